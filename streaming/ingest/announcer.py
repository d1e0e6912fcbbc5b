"""The consumer's after-commit announcements, on a thread of their own (docs/architecture.md#4).

Once a batch commits, ``runs.services.changes`` announces it: a render
message to Celery and run summaries pushed to browsers, which cost a few
database queries, a summary per touched run and Redis round trips per batch.
In the consumer the committing thread is the one storing batches, so the
consumer hands the announcements to this thread instead (``changes_run_with``)
and stores the next batch meanwhile.

What the listeners learn does not change: every committed change, after
commit, in commit order. When announcing falls behind storing (a consumer
catching up), the change sets waiting here are merged into one
(``Changes.merged``): one render message and one push per run for several
batches instead of one per batch. Browsers see the run's latest ``seq`` (a
jump, which makes a page refetch, as a partial push already does). So nothing
piles up in memory and announcing never holds storing back. ``close()`` waits
for everything handed over (a clean stop loses nothing).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connection

from runs.services.changes import Changes, Listener, changes_announce
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.consumer")


class Announcer:
    """Announces handed-over change sets on one thread, in order, merging those that wait."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-announce")
        self._lock = threading.Lock()
        # Waiting, in commit order. The last one absorbs newcomers of its kind;
        # one pool task is queued per entry.
        self._waiting: list[tuple[list[Listener], Changes]] = []
        self.merged = 0  # change sets merged into a waiting one (for tests and logs)
        self._closed = False

    def __call__(self, listeners: list[Listener], changes: Changes) -> None:
        """Hand over one committed change set (a ``changes_run_with`` runner). Never raises:
        it runs in the committer's on-commit hook."""
        with self._lock:
            closed = self._closed
        if closed:  # a late committer (another thread) after close(): announce here
            changes_announce(listeners, changes)
            return
        with self._lock:
            if self._waiting:
                last_listeners, last = self._waiting[-1]
                if last_listeners == listeners and last.ingested == changes.ingested:
                    self._waiting[-1] = (listeners, last.merged(changes))
                    self.merged += 1
                    return
            self._waiting.append((listeners, changes))
        self._pool.submit(self._announce_next)

    def _announce_next(self) -> None:
        with self._lock:
            listeners, changes = self._waiting.pop(0)
        try:
            # The listeners read the database (run summaries) on this thread's own
            # connection: drop it if a database outage broke it.
            close_old_connections()
            changes_announce(listeners, changes)  # each listener's failure is logged there
        except Exception as exc:
            log_event(logger, "announce_failed", level=logging.WARNING, error=repr(exc)[:200])

    def close(self) -> None:
        """Wait for every change set handed over so far, then stop the thread."""
        with self._lock:
            self._closed = True
        self._pool.submit(lambda: connection.close()).result()  # after the others; `connection` there
        self._pool.shutdown(wait=True)

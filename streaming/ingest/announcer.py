"""The consumer's after-commit announcements, on a thread of their own (docs/architecture.md#4).

Once a batch commits, ``runs.services.changes`` announces it: a render
message to Celery and run summaries pushed to browsers, which cost the
committing thread a few database queries and Redis round trips per batch. In
the consumer that thread is the one storing batches, so the consumer hands the
announcements to this thread instead (``changes_run_with``) and stores the
next batch meanwhile. Nothing about what is announced changes: the same
listeners, called after commit, in commit order, each batch once.

At most one batch's announcements wait here: handing over the next one waits
for the one before, so a slow broker slows storing down instead of piling up
memory. ``close()`` waits for the last one (a clean stop loses none).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import close_old_connections, connection

from vizsite.logs import log_event

logger = logging.getLogger("pipelens.consumer")


class Announcer:
    """Runs announcement calls on one thread, in order, one batch behind at most."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-announce")
        self._last: Future | None = None

    def __call__(self, call: Callable[[], None]) -> None:
        """Hand over one batch's announcements (called from the committing thread)."""
        self._wait_last()
        self._last = self._pool.submit(self._run, call)

    @staticmethod
    def _run(call: Callable[[], None]) -> None:
        # The listeners read the database (run summaries) on this thread's own
        # connection: drop it if a database outage broke it.
        close_old_connections()
        call()  # each listener's failure is caught and logged by runs.services.changes

    def _wait_last(self) -> None:
        if self._last is None:
            return
        try:
            self._last.result()
        except Exception as exc:  # close_old_connections itself failed: the next call retries
            log_event(logger, "announce_failed", level=logging.WARNING, error=repr(exc)[:200])
        self._last = None

    def close(self) -> None:
        """Wait for the announcements handed over so far, then stop the thread."""
        self._wait_last()
        self._pool.submit(lambda: connection.close()).result()  # resolved there: per thread
        self._pool.shutdown(wait=True)

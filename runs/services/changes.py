"""What changed, announced after commit: the one after-commit mechanism of ``runs``.

Every change a browser should see bumps the run's ``seq`` in the same
transaction as the change (``runs_touch``, or ingest's own upsert), and is
announced with ``changes_on_commit`` once that transaction commits. Listeners
subscribe in their ``AppConfig.ready()``: the render queue (``runs.apps``)
and the browser pushes (``streaming.apps``). ``runs`` never imports them, so
the arrows stay one way (docs/architecture.md#imports).

The ``seq`` is the contract between pushes and browsers (docs/portal.md#seq):
a browser that sees a gap refetches the run's state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection, transaction

from vizsite.logs import log_event

logger = logging.getLogger("pipelens.changes")


@dataclass(frozen=True, slots=True)
class Changes:
    """One committed change set.

    ``ingested`` is true when new object versions were stored (they need
    rendering); false for changes of renditions (they only need pushing).
    ``run_ids`` are every run whose ``seq`` went up, even when no artifact
    changed, so browsers never see a false gap.
    """

    run_ids: frozenset[int]
    artifact_ids: tuple[int, ...]
    ingested: bool

    def merged(self, later: Changes) -> Changes:
        """One change set for this one and a later one of the same kind (``ingested``):
        announcing it once tells the listeners what announcing both would have."""
        if later.ingested != self.ingested:
            raise ValueError("only change sets of the same kind merge")
        return Changes(
            run_ids=self.run_ids | later.run_ids,
            artifact_ids=tuple(sorted({*self.artifact_ids, *later.artifact_ids})),
            ingested=self.ingested,
        )


Listener = Callable[[Changes], None]
_listeners: list[Listener] = []
# Who calls the listeners once the transaction has committed: by default the
# committing thread, at once. A process may hand them to a runner of its own
# (``changes_run_with``): the ingest consumer runs them on a thread of its own so
# that the next batch is stored meanwhile (streaming/ingest/announcer.py).
Runner = Callable[[list[Listener], Changes], None]
_runner: Runner | None = None


def changes_subscribe(listener: Listener) -> None:
    """Call ``listener`` with every committed ``Changes`` (idempotent; from AppConfig.ready)."""
    if listener not in _listeners:
        _listeners.append(listener)


def changes_on_commit(
    *, run_ids: Iterable[int] = (), artifact_ids: Iterable[int] = (), ingested: bool = False
) -> None:
    """Announce a change once the current transaction commits (at once outside one).

    A failing listener is logged and skipped: the data is committed, and
    browsers recover a lost push through ``seq``.
    """
    changes = Changes(
        run_ids=frozenset(int(i) for i in run_ids),
        artifact_ids=tuple(sorted({int(i) for i in artifact_ids})),
        ingested=ingested,
    )
    if not changes.run_ids and not changes.artifact_ids:
        return
    listeners = list(_listeners)
    if listeners:
        transaction.on_commit(lambda: _announce(listeners, changes))


@contextmanager
def changes_run_with(runner: Runner):
    """While in this block, committed changes are handed to ``runner(listeners, changes)``
    instead of being announced in the committing thread. The runner must announce
    them with ``changes_announce``, in commit order, later and from another thread
    if it likes; it may announce several as one (``Changes.merged``)."""
    global _runner
    previous, _runner = _runner, runner
    try:
        yield
    finally:
        _runner = previous


def changes_announce(listeners: list[Listener], changes: Changes) -> None:
    """Call each listener with ``changes`` (for runners; see ``changes_run_with``)."""
    _notify(listeners, changes)


def _announce(listeners: list, changes: Changes) -> None:
    runner = _runner
    if runner is None:
        _notify(listeners, changes)
    else:
        runner(listeners, changes)


def _notify(listeners: list, changes) -> None:
    for listener in listeners:
        try:
            listener(changes)
        except Exception as exc:
            log_event(
                logger,
                "change_listener_failed",
                level=logging.WARNING,
                listener=getattr(listener, "__qualname__", repr(listener)),
                error=repr(exc)[:200],
            )


# --- access changes: who may see what changed for these users ---------------------
# Open WebSocket sockets decide access when they connect; the live side
# subscribes here to make the users' open sockets check again at once
# (grant revoked, user deactivated or removed from a group, logout, password
# change), so no push reaches a socket whose user lost access.

AccessListener = Callable[[frozenset[int]], None]
_access_listeners: list[AccessListener] = []


def access_changes_subscribe(listener: AccessListener) -> None:
    """Call ``listener`` with the user ids whose access changed, after commit (idempotent)."""
    if listener not in _access_listeners:
        _access_listeners.append(listener)


def access_changed_on_commit(*, user_ids: Iterable[int]) -> None:
    """Announce, once the current transaction commits, that these users' access changed."""
    ids = frozenset(int(i) for i in user_ids)
    listeners = list(_access_listeners)
    if ids and listeners:
        transaction.on_commit(lambda: _notify(listeners, ids))


@transaction.atomic
def runs_touch(*, run_ids: Iterable[int]) -> dict[int, int]:
    """Increment ``Run.seq`` of ``run_ids`` in the caller's transaction; returns {run id: new seq}.

    Rows are locked in id order, as ingest does, so concurrent writers
    (consumer, render workers) cannot deadlock on each other. Unknown ids are
    ignored.
    """
    ids = sorted({int(i) for i in run_ids})
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM runs_run WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids])
        cursor.execute("UPDATE runs_run SET seq = seq + 1 WHERE id = ANY(%s) RETURNING id, seq", [ids])
        return dict(cursor.fetchall())

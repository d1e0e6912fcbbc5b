"""Run sequence numbers: the contract between pushes and browsers (docs/portal.md#seq).

Every change a browser should see bumps the run's ``seq`` in the same
transaction as the change; the push that follows the commit carries it, and a
browser that sees a gap refetches the run's state.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction


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

"""RunMetric and RunProgress: each run's metric values and progress, kept in step with its
METRICS and PROGRESS renditions (docs/portal.md#metrics).

The runs list sorts by a metric, shows metric columns and progress bars from
these tables (an index walk, 50 rows a page), not from the renditions' JSON
over every artifact of the page's runs. A run's rows are recomputed from its
current (artifact not deleted, same etag), ready METRICS and PROGRESS
renditions, later artifacts winning, whenever one of them may have changed:

- a rendition is stored (runs.services.renditions calls ``run_metrics_refresh``
  in the same transaction, so the list and the pushes agree at commit);
- an artifact with such renditions is overwritten or deleted
  (``on_changes``, after the ingest batch commits: the old version's values
  stop counting at once, as they did when the list read the renditions).

Migration 0014 backfilled the table with the same rule in SQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import F

from runs.kinds import Viewer
from runs.models import Rendition, Run, RunMetric, RunProgress
from runs.services.changes import Changes

NAME_MAX = 200
DISPLAY_MAX = 200
MESSAGE_MAX = 500


# The viewers whose renditions feed the runs list's columns.
LIST_VIEWERS = (Viewer.METRICS, Viewer.PROGRESS)


def _current(*, run_id: int) -> tuple[dict[str, tuple[float, str]], tuple[float | None, str] | None]:
    """``({name: (value, display)}, (percent, message) or None)`` from the run's current,
    ready METRICS and PROGRESS renditions, later ones winning."""
    rows = (
        Rendition.objects.filter(
            artifact__run_id=run_id,
            artifact__deleted=False,
            etag=F("artifact__etag"),
            status=Rendition.Status.READY,
            viewer__in=LIST_VIEWERS,
        )
        .order_by("artifact__event_time", "artifact_id", "position")
        .values_list("viewer", "payload")
    )
    metrics: dict[str, tuple[float, str]] = {}
    progress = None
    for viewer, payload in rows:
        if not isinstance(payload, dict):
            continue
        if viewer == Viewer.PROGRESS:
            percent = payload.get("percent")
            if (
                isinstance(percent, bool)
                or not isinstance(percent, int | float)
                or not math.isfinite(percent)
            ):
                percent = None
            message = payload.get("message")
            progress = (percent, message[:MESSAGE_MAX] if isinstance(message, str) else "")
            continue
        items = payload.get("metrics")
        for m in items if isinstance(items, list) else ():
            if not isinstance(m, dict) or not isinstance(m.get("name"), str):
                continue
            value = m.get("value")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            metrics[m["name"][:NAME_MAX]] = (float(value), str(m.get("display", ""))[:DISPLAY_MAX])
    return metrics, progress


@transaction.atomic
def run_metrics_refresh(*, run_ids: Iterable[int]) -> None:
    """Recompute the RunMetric and RunProgress rows of these runs from their renditions.

    Each run's row is locked first (in id order), so two refreshes of one run
    (a render and an overwrite) do not interleave; the ingest consumer's batch
    locks runs too, which is why ``on_changes`` refreshes one run per transaction.
    """
    for run_id in sorted(set(run_ids)):
        if not Run.objects.select_for_update().filter(pk=run_id).exists():
            continue
        wanted, progress = _current(run_id=run_id)
        have = {m.name: m for m in RunMetric.objects.filter(run_id=run_id)}
        stale = [m.pk for name, m in have.items() if name not in wanted]
        if stale:
            RunMetric.objects.filter(pk__in=stale).delete()
        new = []
        for name, (value, display) in wanted.items():
            row = have.get(name)
            if row is None:
                new.append(RunMetric(run_id=run_id, name=name, value=value, display=display))
            elif row.value != value or row.display != display:
                row.value, row.display = value, display
                row.save(update_fields=["value", "display"])
        if new:
            RunMetric.objects.bulk_create(new)
        if progress is None:
            RunProgress.objects.filter(run_id=run_id).delete()
        else:
            RunProgress.objects.update_or_create(
                run_id=run_id, defaults={"percent": progress[0], "message": progress[1]}
            )


def on_changes(changes: Changes) -> None:
    """Change listener (subscribed in runs.apps): after ingest stored new versions or
    deletions, refresh the runs whose changed artifacts carry METRICS or PROGRESS renditions.

    Every change set counts, not only ``ingested`` ones: ingest without rendering
    (a lazy backfill) announces its overwrites and deletions as not ingested.
    """
    if not changes.artifact_ids:
        return
    run_ids = set(
        Rendition.objects.filter(artifact_id__in=changes.artifact_ids, viewer__in=LIST_VIEWERS).values_list(
            "artifact__run_id", flat=True
        )
    )
    for run_id in sorted(run_ids):
        run_metrics_refresh(run_ids=[run_id])


# The rule of ``_current_metrics`` as one set-based statement, for every run at once
# (migration 0014 holds a frozen copy): later artifacts win, then later positions,
# then later entries of one rendition's list.
_BACKFILL = """
INSERT INTO runs_runmetric (run_id, name, value, display)
SELECT DISTINCT ON (a.run_id, left(m.e->>'name', 200))
       a.run_id, left(m.e->>'name', 200), (m.e->>'value')::float8, left(coalesce(m.e->>'display', ''), 200)
FROM runs_rendition r
JOIN runs_artifact a ON a.id = r.artifact_id
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(r.payload->'metrics') = 'array' THEN r.payload->'metrics' ELSE '[]'::jsonb END
) WITH ORDINALITY AS m(e, i)
WHERE r.viewer = 'metrics' AND r.status = 'ready' AND r.etag = a.etag AND NOT a.deleted
  AND jsonb_typeof(m.e) = 'object' AND jsonb_typeof(m.e->'name') = 'string'
  AND jsonb_typeof(m.e->'value') = 'number'
ORDER BY a.run_id, left(m.e->>'name', 200), a.event_time DESC, a.id DESC, r.position DESC, m.i DESC
"""


_BACKFILL_PROGRESS = """
INSERT INTO runs_runprogress (run_id, percent, message)
SELECT DISTINCT ON (a.run_id)
       a.run_id,
       CASE WHEN jsonb_typeof(r.payload->'percent') = 'number' THEN (r.payload->>'percent')::float8 END,
       left(CASE WHEN jsonb_typeof(r.payload->'message') = 'string' THEN r.payload->>'message'
                 ELSE '' END, 500)
FROM runs_rendition r
JOIN runs_artifact a ON a.id = r.artifact_id
WHERE r.viewer = 'progress' AND r.status = 'ready' AND r.etag = a.etag AND NOT a.deleted
ORDER BY a.run_id, a.event_time DESC, a.id DESC, r.position DESC
"""


@transaction.atomic
def run_metrics_backfill() -> int:
    """Rebuild the whole RunMetric and RunProgress tables from the renditions (after
    seeding data with SQL, or if they ever drifted); returns the metric rows written."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM runs_runmetric")
        cursor.execute(_BACKFILL)
        written = cursor.rowcount
        cursor.execute("DELETE FROM runs_runprogress")
        cursor.execute(_BACKFILL_PROGRESS)
        cursor.execute("ANALYZE runs_runmetric")
        cursor.execute("ANALYZE runs_runprogress")
    return written

"""RunMetric: each run's metric values, kept in step with its METRICS renditions (docs/portal.md#metrics).

The runs list sorts by a metric and shows metric columns from this table
(an index walk), not from the renditions' JSON. A run's rows are recomputed
from its current (artifact not deleted, same etag), ready METRICS renditions,
later artifacts winning, whenever one of them may have changed:

- a rendition is stored (runs.services.renditions calls ``run_metrics_refresh``
  in the same transaction, so the list and the pushes agree at commit);
- an artifact with METRICS renditions is overwritten or deleted
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
from runs.models import Rendition, Run, RunMetric
from runs.services.changes import Changes

NAME_MAX = 200
DISPLAY_MAX = 200


def _current_metrics(*, run_id: int) -> dict[str, tuple[float, str]]:
    """``{name: (value, display)}`` from the run's current, ready METRICS renditions."""
    payloads = (
        Rendition.objects.filter(
            artifact__run_id=run_id,
            artifact__deleted=False,
            etag=F("artifact__etag"),
            status=Rendition.Status.READY,
            viewer=Viewer.METRICS,
        )
        .order_by("artifact__event_time", "artifact_id", "position")
        .values_list("payload", flat=True)
    )
    out: dict[str, tuple[float, str]] = {}
    for payload in payloads:
        items = payload.get("metrics") if isinstance(payload, dict) else None
        for m in items if isinstance(items, list) else ():
            if not isinstance(m, dict) or not isinstance(m.get("name"), str):
                continue
            value = m.get("value")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                continue
            out[m["name"][:NAME_MAX]] = (float(value), str(m.get("display", ""))[:DISPLAY_MAX])
    return out


@transaction.atomic
def run_metrics_refresh(*, run_ids: Iterable[int]) -> None:
    """Recompute the RunMetric rows of these runs from their renditions.

    Each run's row is locked first (in id order), so two refreshes of one run
    (a render and an overwrite) do not interleave; the ingest consumer's batch
    locks runs too, which is why ``on_changes`` refreshes one run per transaction.
    """
    for run_id in sorted(set(run_ids)):
        if not Run.objects.select_for_update().filter(pk=run_id).exists():
            continue
        wanted = _current_metrics(run_id=run_id)
        have = {m.name: m for m in RunMetric.objects.filter(run_id=run_id)}
        stale = [m.pk for name, m in have.items() if name not in wanted]
        if stale:
            RunMetric.objects.filter(pk__in=stale).delete()
        changed = []
        for name, (value, display) in wanted.items():
            row = have.get(name)
            if row is None:
                changed.append(RunMetric(run_id=run_id, name=name, value=value, display=display))
            elif row.value != value or row.display != display:
                row.value, row.display = value, display
                row.save(update_fields=["value", "display"])
        if changed:
            RunMetric.objects.bulk_create(changed)


def on_changes(changes: Changes) -> None:
    """Change listener (subscribed in runs.apps): after ingest stored new versions or
    deletions, refresh the runs whose changed artifacts carry METRICS renditions.

    Every change set counts, not only ``ingested`` ones: ingest without rendering
    (a lazy backfill) announces its overwrites and deletions as not ingested.
    """
    if not changes.artifact_ids:
        return
    run_ids = set(
        Rendition.objects.filter(artifact_id__in=changes.artifact_ids, viewer=Viewer.METRICS).values_list(
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


@transaction.atomic
def run_metrics_backfill() -> int:
    """Rebuild the whole RunMetric table from the renditions (after seeding data with SQL,
    or if it ever drifted); returns the rows written."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM runs_runmetric")
        cursor.execute(_BACKFILL)
        written = cursor.rowcount
        cursor.execute("ANALYZE runs_runmetric")
    return written

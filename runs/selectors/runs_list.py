"""The runs list: filters, sorts, filter choices, progress and metric columns (docs/portal.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.expressions import RawSQL

from runs.kinds import Viewer
from runs.models import Bucket, Rendition, Run
from runs.selectors.access import runs_visible_to

RUN_SORTS = {
    "recent": ("-last_event_at", "-id"),
    "oldest": ("last_event_at", "id"),
    "name": ("name", "id"),
    "artifacts": ("-artifact_count", "-last_event_at", "-id"),
}


# What a run's status can be (a step's "done" never is), for the list's filter.
RUN_STATUS_CHOICES = [(value, label) for value, label in Run.Status.choices if value != Run.Status.DONE]


@dataclass(frozen=True, slots=True)
class RunFilters:
    """Validated runs-list filters (runs/forms.py builds them from the query string)."""

    q: str = ""
    bucket: str = ""
    namespace: str = ""
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    sort: str = "recent"
    # Sort by a metric's value instead (runs without it last); "" = use ``sort``.
    metric: str = ""
    metric_ascending: bool = False

    @property
    def active(self) -> bool:
        return bool(self.q or self.bucket or self.namespace or self.status or self.date_from or self.date_to)


def runs_list(*, user, filters: RunFilters) -> QuerySet[Run]:
    """Visible runs matching ``filters``, sorted; the caller paginates."""
    runs = runs_visible_to(user=user).select_related("bucket")
    if filters.q:
        runs = runs.filter(
            Q(name__icontains=filters.q) | Q(pipeline__icontains=filters.q) | Q(run_key__icontains=filters.q)
        )
    if filters.bucket:
        runs = runs.filter(bucket__name=filters.bucket)
    if filters.namespace:
        runs = runs.filter(namespace=filters.namespace)
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.date_from:
        runs = runs.filter(last_event_at__date__gte=filters.date_from)
    if filters.date_to:
        runs = runs.filter(last_event_at__date__lte=filters.date_to)
    if filters.metric:
        return runs_order_by_metric(runs, name=filters.metric, descending=not filters.metric_ascending)
    return runs.order_by(*RUN_SORTS[filters.sort])


def run_filter_choices(*, user) -> dict[str, list[str]]:
    """Buckets and namespaces the user can filter by (from what they may see)."""
    runs = runs_visible_to(user=user)
    buckets = sorted(set(Bucket.objects.filter(runs__in=runs).values_list("name", flat=True)))
    namespaces = sorted(set(runs.exclude(namespace="").values_list("namespace", flat=True)))
    return {"buckets": buckets, "namespaces": namespaces}


def run_progress_and_metrics(*, run_ids) -> dict[int, dict]:
    """Per run: the latest ready progress (``{"percent", "message"}`` or None) and its
    metrics (``{name: {"value", "display"}}``, later artifacts win), from current renditions."""
    rows = (
        Rendition.objects.filter(
            artifact__run_id__in=list(run_ids),
            artifact__deleted=False,
            etag=F("artifact__etag"),
            status=Rendition.Status.READY,
            viewer__in=(Viewer.PROGRESS, Viewer.METRICS),
        )
        .order_by("artifact__event_time", "artifact_id", "position")
        .values_list("artifact__run_id", "viewer", "payload")
    )
    out: dict[int, dict] = {}
    for run_id, viewer, payload in rows:
        entry = out.setdefault(run_id, {"progress": None, "metrics": {}})
        if viewer == Viewer.PROGRESS:
            entry["progress"] = {"percent": payload.get("percent"), "message": payload.get("message", "")}
        else:
            for m in payload.get("metrics", []):
                entry["metrics"][m["name"]] = {"value": m["value"], "display": m["display"]}
    return out


def metric_names(*, runs) -> list[str]:
    """The metric names found in ``runs`` (a queryset from runs_visible_to), sorted."""
    ids = list(runs.values_list("pk", flat=True)[:5000])
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT DISTINCT m->>'name' FROM runs_rendition r JOIN runs_artifact a ON a.id = r.artifact_id,
                      jsonb_array_elements(r.payload->'metrics') m
               WHERE a.run_id = ANY(%s) AND NOT a.deleted AND r.etag = a.etag
                 AND r.viewer = %s AND r.status = %s ORDER BY 1""",
            [ids, Viewer.METRICS, str(Rendition.Status.READY)],
        )
        return [name for (name,) in cursor.fetchall()]


def runs_order_by_metric(runs, *, name: str, descending: bool = True):
    """``runs`` sorted by the metric ``name`` (runs without it last); annotates ``metric_value``."""
    value = RawSQL(
        """(SELECT max((m->>'value')::float8)
              FROM runs_rendition r JOIN runs_artifact a ON a.id = r.artifact_id,
                   jsonb_array_elements(r.payload->'metrics') m
             WHERE a.run_id = runs_run.id AND NOT a.deleted AND r.etag = a.etag
               AND r.viewer = %s AND r.status = %s AND m->>'name' = %s)""",
        [Viewer.METRICS, str(Rendition.Status.READY), name],
    )
    order = F("metric_value").desc(nulls_last=True) if descending else F("metric_value").asc(nulls_last=True)
    return runs.annotate(metric_value=value).order_by(order, "-id")

"""Reads from the runs database. Every read that a user can see goes through here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import F, Prefetch, Q, QuerySet, prefetch_related_objects

from runs.models import Artifact, Bucket, BucketGrant, KafkaTopic, Rendition, Run, Step


def enabled_topic_names(*, bootstrap_servers: str) -> list[str]:
    """Names of the enabled topics served by ``bootstrap_servers`` (or by the default)."""
    rows = KafkaTopic.objects.filter(enabled=True).filter(
        Q(bootstrap_servers="") | Q(bootstrap_servers=bootstrap_servers)
    )
    return sorted(rows.values_list("name", flat=True))


# --- access (DESIGN.md §6, docs/portal.md#access) ------------------------------------
# One decision for pages, JSON, downloads, previews and WebSocket subscriptions:
# ``access_scope_for(user)`` says which runs a user may see, as a database
# filter (``runs_visible_to``) and as a pure predicate (``AccessScope.allows``)
# for the runs-list socket, which filters pushed summaries without a query.


@dataclass(frozen=True, slots=True)
class AccessScope:
    """What one user may see: everything (superuser) or the union of grants."""

    everything: bool = False
    # (bucket id, key prefix or "", namespace or "")
    grants: tuple[tuple[int, str, str], ...] = ()

    def allows(self, *, bucket_id: int, run_key: str, namespace: str) -> bool:
        if self.everything:
            return True
        return any(bucket_id == b and run_key.startswith(prefix) and (not ns or namespace == ns)
                   for b, prefix, ns in self.grants)

    def run_filter(self) -> Q | None:
        """A filter on Run rows; None means "nothing" (no grant at all)."""
        if self.everything:
            return Q()
        q = None
        for bucket_id, prefix, ns in self.grants:
            term = Q(bucket_id=bucket_id)
            if prefix:
                term &= Q(run_key__startswith=prefix)
            if ns:
                term &= Q(namespace=ns)
            q = term if q is None else q | term
        return q


def access_scope_for(*, user) -> AccessScope:
    """The runs ``user`` may see. Anonymous and inactive users see nothing."""
    if user is None or not user.is_authenticated or not user.is_active:
        return AccessScope()
    if user.is_superuser:
        return AccessScope(everything=True)
    rows = BucketGrant.objects.filter(group__user=user).values_list("bucket_id", "key_prefix", "namespace")
    return AccessScope(grants=tuple(sorted(set(rows))))


def runs_visible_to(*, user, scope: AccessScope | None = None) -> QuerySet[Run]:
    """Every run ``user`` may see; the only entry to runs for anything a user reads."""
    scope = scope or access_scope_for(user=user)
    q = scope.run_filter()
    if q is None:
        return Run.objects.none()
    return Run.objects.filter(q)


def run_get_visible(*, user, run_id: int) -> Run | None:
    """The run, if it exists and ``user`` may see it; None otherwise (callers answer 404)."""
    return runs_visible_to(user=user).select_related("bucket").filter(pk=run_id).first()


def artifact_get_visible(*, user, run_id: int, artifact_id: int) -> Artifact | None:
    """An artifact of a run ``user`` may see, or None."""
    run = run_get_visible(user=user, run_id=run_id)
    if run is None:
        return None
    artifact = Artifact.objects.select_related("step").filter(pk=artifact_id, run_id=run.pk).first()
    if artifact is not None:
        artifact.run = run
        artifact.bucket = run.bucket
    return artifact


# --- runs list ---------------------------------------------------------------------

RUN_SORTS = {
    "recent": ("-last_event_at", "-id"),
    "oldest": ("last_event_at", "id"),
    "name": ("name", "id"),
    "artifacts": ("-artifact_count", "-last_event_at", "-id"),
}


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
        return bool(self.q or self.bucket or self.namespace or self.status or self.date_from
                    or self.date_to)


def runs_list(*, user, filters: RunFilters) -> QuerySet[Run]:
    """Visible runs matching ``filters``, sorted; the caller paginates."""
    runs = runs_visible_to(user=user).select_related("bucket")
    if filters.q:
        runs = runs.filter(Q(name__icontains=filters.q) | Q(pipeline__icontains=filters.q)
                           | Q(run_key__icontains=filters.q))
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
        from runs.selectors_viewers import runs_order_by_metric

        return runs_order_by_metric(runs, name=filters.metric, descending=not filters.metric_ascending)
    return runs.order_by(*RUN_SORTS[filters.sort])


def run_filter_choices(*, user) -> dict[str, list[str]]:
    """Buckets and namespaces the user can filter by (from what they may see)."""
    runs = runs_visible_to(user=user)
    buckets = sorted(set(Bucket.objects.filter(runs__in=runs).values_list("name", flat=True)))
    namespaces = sorted(set(runs.exclude(namespace="").values_list("namespace", flat=True)))
    return {"buckets": buckets, "namespaces": namespaces}


# --- run state: pages, JSON and pushes share these shapes ---------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_summary(run: Run) -> dict[str, Any]:
    """The JSON shape of a run in pushes and the state API."""
    return {
        "id": run.pk, "name": run.name, "pipeline": run.pipeline, "namespace": run.namespace,
        "bucket_id": run.bucket_id, "bucket": run.bucket.name, "run_key": run.run_key,
        "status": run.status, "artifact_count": run.artifact_count, "seq": run.seq,
        "first_event_at": _iso(run.first_event_at), "last_event_at": _iso(run.last_event_at),
    }


def run_summaries(*, run_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Summaries of the given runs (two queries), by run id, with each run's latest
    progress (``{"percent", "message"}`` or None) and metrics (``{name: display}``)
    for the runs list's live progress bar and metric columns."""
    from runs.selectors_viewers import run_progress_and_metrics

    runs = list(Run.objects.select_related("bucket").filter(pk__in=list(run_ids)))
    extras = run_progress_and_metrics(run_ids=[run.pk for run in runs])
    out = {}
    for run in runs:
        extra = extras.get(run.pk, {"progress": None, "metrics": {}})
        out[run.pk] = {**run_summary(run), "progress": extra["progress"],
                       "metrics": {name: m["display"] for name, m in extra["metrics"].items()}}
    return out


def _renditions_by_artifact(artifact_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Renditions of each artifact's current etag only (older versions' are history)."""
    rows = (Rendition.objects.filter(artifact_id__in=artifact_ids, etag=F("artifact__etag"))
            .order_by("artifact_id", "position")
            .values_list("artifact_id", "id", "position", "viewer", "title", "status", "error"))
    found: dict[int, list[dict[str, Any]]] = {}
    for artifact_id, rid, position, viewer, title, status, error in rows:
        found.setdefault(artifact_id, []).append(
            {"id": rid, "position": position, "viewer": viewer, "title": title, "status": status,
             "error": error})
    return found


_ARTIFACT_FIELDS = ("id", "run_id", "step_id", "step__name", "key", "name", "kind", "size", "etag",
                    "content_type", "event_time", "deleted")


def _artifact_state(row: dict[str, Any], renditions: dict[int, list]) -> dict[str, Any]:
    return {
        "id": row["id"], "run_id": row["run_id"], "step_id": row["step_id"], "step": row["step__name"],
        "key": row["key"], "name": row["name"], "kind": row["kind"], "size": row["size"],
        "etag": row["etag"], "content_type": row["content_type"],
        "event_time": _iso(row["event_time"]), "deleted": row["deleted"],
        "renditions": renditions.get(row["id"], []),
    }


def artifact_states(*, artifact_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Current state of the given artifacts (two queries), each with its renditions
    as ``[{id, position, viewer, title, status, error}]``."""
    ids = list(artifact_ids)
    if not ids:
        return []
    rows = list(Artifact.objects.filter(pk__in=ids).order_by("run_id", "key").values(*_ARTIFACT_FIELDS))
    renditions = _renditions_by_artifact([r["id"] for r in rows])
    return [_artifact_state(row, renditions) for row in rows]


def run_steps_with_artifacts(*, run: Run) -> list[dict[str, Any]]:
    """Steps in order, each with its live artifacts' states (three queries in all)."""
    steps = list(Step.objects.filter(run=run).order_by("first_event_at", "name")
                 .values("id", "name", "status", "first_event_at", "last_event_at", "artifact_count"))
    rows = list(Artifact.objects.filter(run=run, deleted=False).order_by("key").values(*_ARTIFACT_FIELDS))
    renditions = _renditions_by_artifact([r["id"] for r in rows])
    by_step: dict[int, list] = {}
    for row in rows:
        by_step.setdefault(row["step_id"], []).append(_artifact_state(row, renditions))
    return [{**step, "first_event_at": _iso(step["first_event_at"]),
             "last_event_at": _iso(step["last_event_at"]), "artifacts": by_step.get(step["id"], [])}
            for step in steps]


def run_state(*, run: Run, since: int | None = None) -> dict[str, Any]:
    """The run's state for the JSON API and for browsers recovering from a gap.

    Artifacts carry no seq of their own, so ``since`` only saves the payload
    when nothing changed (``since >= seq``): then ``changed`` is false and no
    steps are sent; otherwise the whole state is, and the page replaces its own.
    """
    if since is not None and since >= run.seq:
        return {"run": run_summary(run), "seq": run.seq, "changed": False, "steps": None}
    return {"run": run_summary(run), "seq": run.seq, "changed": True,
            "steps": run_steps_with_artifacts(run=run)}


# --- run page (HTML): model instances, so the preview partial can use them ---------


def _current_renditions() -> Prefetch:
    # Prefetched into ``artifact.renditions.all()``: the preview partial may
    # use it freely, at no query per artifact, and sees the current etag only.
    return Prefetch("renditions", queryset=Rendition.objects.filter(etag=F("artifact__etag"))
                    .order_by("position"))


def artifact_signature(artifact: Artifact) -> str:
    """What the page compares to decide whether to refetch a preview (same rule as run_detail.js)."""
    return _signature(artifact.etag, [(r.pk, r.status) for r in artifact.renditions.all()])


def _signature(etag: str, renditions: list[tuple[int, str]]) -> str:
    return f"{etag}|{','.join(f'{rid}:{status}' for rid, status in renditions)}"


@dataclass(slots=True)
class ArtifactRow:
    """One line of the run page; ``preview`` is a model instance for inline previews only."""

    id: int
    step_id: int
    key: str
    name: str
    kind: str
    size: int | None
    event_time: datetime
    signature: str
    rendition_status: str
    preview: Artifact | None = None


def run_page_steps(*, run: Run, inline_previews: int) -> list[Step]:
    """Steps in order, each with ``rows`` (ArtifactRow) of its live artifacts.

    The first ``inline_previews`` rows carry a model instance with renditions
    prefetched, for the preview partial; the others load their preview later.
    Six queries whatever the number of artifacts.
    """
    steps = list(Step.objects.filter(run=run).order_by("first_event_at", "name"))
    rows = Artifact.objects.filter(run=run, deleted=False).order_by("key").values_list(
        "id", "step_id", "key", "name", "kind", "size", "event_time", "etag")
    renditions: dict[int, list[tuple[int, str]]] = {}
    for artifact_id, rid, status in (
            Rendition.objects.filter(artifact__run=run, artifact__deleted=False, etag=F("artifact__etag"))
            .order_by("artifact_id", "position").values_list("artifact_id", "id", "status")):
        renditions.setdefault(artifact_id, []).append((rid, status))
    by_step: dict[int, list[ArtifactRow]] = {}
    for aid, step_id, key, name, kind, size, event_time, etag in rows:
        rs = renditions.get(aid, [])
        by_step.setdefault(step_id, []).append(ArtifactRow(
            id=aid, step_id=step_id, key=key, name=name, kind=kind, size=size, event_time=event_time,
            signature=_signature(etag, rs), rendition_status=rs[0][1] if rs else "new"))
    ordered = [row for step in steps for row in by_step.get(step.pk, [])]
    inline = {row.id: row for row in ordered[:max(inline_previews, 0)]}
    if inline:
        models = list(Artifact.objects.filter(pk__in=list(inline)).prefetch_related(_current_renditions()))
        for artifact in models:
            artifact.run = run
            artifact.bucket = run.bucket
            inline[artifact.pk].preview = artifact
    for step in steps:
        step.rows = by_step.get(step.pk, [])
    return steps


def artifact_get_for_preview(*, user, run_id: int, artifact_id: int) -> Artifact | None:
    """Like ``artifact_get_visible``, with the current renditions prefetched."""
    artifact = artifact_get_visible(user=user, run_id=run_id, artifact_id=artifact_id)
    if artifact is not None:
        prefetch_related_objects([artifact], _current_renditions())
    return artifact


# --- downloads: object bytes, streamed ----------------------------------------------

class ObjectGone(Exception):
    """The object an artifact names is no longer in its bucket."""


class ObjectStream:
    """An object's bytes as an iterator of chunks; releases the connection when done."""

    def __init__(self, response, chunk_size: int):
        self._response = response
        self._chunk_size = chunk_size
        length = response.headers.get("Content-Length")
        self.length = int(length) if length and length.isdigit() else None

    def __iter__(self):
        try:
            yield from self._response.stream(self._chunk_size)
        finally:
            self.close()

    def close(self) -> None:
        self._response.close()
        self._response.release_conn()


def artifact_stream(*, artifact, chunk_size: int = 256 * 1024) -> ObjectStream:
    """Open an artifact's object for streaming (never read whole into memory)."""
    from minio.error import S3Error

    from runs.storage import minio_client

    client = minio_client(artifact.bucket.endpoint)
    try:
        response = client.get_object(artifact.bucket.name, artifact.key)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchBucket"):
            raise ObjectGone(artifact.key) from exc
        raise
    return ObjectStream(response, chunk_size)

"""Reads behind the viewers' own endpoints (docs/viewers.md): table pages, earlier
log text, preview objects, web-app documents behind signed URLs.

Access is always decided by ``runs.selectors.artifact_get_visible`` (which
asks ``runs_visible_to``); a rendition is only ever reached through its
visible artifact. The web-app origin has no user: it accepts only a token
this module signed for one rendition, valid WEBAPP_URL_MAX_AGE_S seconds.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from functools import lru_cache

from django.conf import settings
from django.core import signing

from runs.models import Rendition
from runs.rendering import table, text
from runs.rendering.base import RenderError
from runs.rendering.objects import ObjectSource, source_at
from runs.selectors import artifact_get_visible

_WEBAPP_SALT = "pipelens.webapp"


def rendition_get_visible(*, user, run_id: int, artifact_id: int, rendition_id: int) -> Rendition | None:
    """The rendition, if its artifact belongs to a run ``user`` may see."""
    artifact = artifact_get_visible(user=user, run_id=run_id, artifact_id=artifact_id)
    if artifact is None:
        return None
    rendition = Rendition.objects.filter(pk=rendition_id, artifact_id=artifact.pk).first()
    if rendition is not None:
        rendition.artifact = artifact
    return rendition


@lru_cache(maxsize=64)
def _index(index_key: str) -> tuple:
    # Index objects are immutable (one key per artifact version), so caching is safe.
    data = ObjectSource(settings.PREVIEW_BUCKET, index_key).read(64 * 1024 * 1024)
    return tuple(tuple(e) for e in json.loads(data))


class Busy(Exception):
    """Too many heavy viewer reads in this process at once: answer "busy, retry" (503)."""


_reads_lock = threading.Lock()
_reads: tuple[int, threading.BoundedSemaphore] | None = None


def reads_semaphore() -> threading.BoundedSemaphore:
    """The process-wide bound on concurrent heavy viewer reads (VIEWER_MAX_CONCURRENT_READS)."""
    global _reads
    size = max(1, settings.VIEWER_MAX_CONCURRENT_READS)
    with _reads_lock:
        if _reads is None or _reads[0] != size:
            _reads = (size, threading.BoundedSemaphore(size))
        return _reads[1]


@contextmanager
def heavy_read():
    """Hold one of the process's heavy-read slots, or raise Busy at once (never wait for one:
    a request queued behind slow reads holds its socket and thread meanwhile)."""
    semaphore = reads_semaphore()
    if not semaphore.acquire(blocking=False):
        raise Busy("The server is busy reading other previews; retrying in a moment.")
    try:
        yield
    finally:
        semaphore.release()


def table_page(*, rendition: Rendition, start: int, count: int, sort: int | None = None,
               descending: bool = False) -> dict:
    """Rows [start, start+count) of a table rendition, optionally sorted (small tables only).

    Never parses more than a page here: sorted pages come from the worker's
    sorted copy (runs/services/table_sort.py). While it is being built the
    answer is ``{"pending": True, "message": …}`` and the page asks again.
    Raises Busy when VIEWER_MAX_CONCURRENT_READS reads are already running.
    """
    from runs.services import table_sort

    payload = rendition.payload
    if rendition.viewer != table.VIEWER or not payload.get("source"):
        raise RenderError("This preview has no pages.")
    if not payload.get("indexed"):
        raise RenderError("The table is still being indexed; only the first page is available yet.")
    with heavy_read():
        if sort is not None:
            if not payload.get("sortable"):
                raise RenderError("This table is too large to sort.")
            if not 0 <= sort < len(payload.get("columns", [])):
                raise RenderError("No such column.")
            meta = table_sort.sorted_meta(rendition=rendition, column=sort)
            if meta is None:
                table_sort.request_sort(rendition=rendition, column=sort)
                return {"pending": True, "message": "Sorting this table (in the background)…",
                        "row_count": payload.get("row_count")}
            if meta.get("error"):
                raise RenderError(meta["error"])
            rows = table_sort.read_sorted(rendition=rendition, meta=meta, start=start, count=count,
                                          descending=descending)
            return {"start": max(0, start), "rows": rows, "row_count": payload.get("row_count"),
                    "notices": []}
        index = [list(e) for e in _index(payload["index_key"])] if payload.get("index_key") else [[0, 0]]
        source = source_at(payload["source"], size=payload.get("size"))
        return table.read_page(payload, index, lambda offset, length: source.chunks(
            256 * 1024, offset=offset, length=length), start=start, count=count)


def text_before(*, rendition: Rendition, before: int) -> dict:
    """The TEXT_TAIL_BYTES of a log that end at byte ``before`` ("load earlier")."""
    payload = rendition.payload
    if rendition.viewer != text.VIEWER or not payload.get("source"):
        raise RenderError("This preview has no earlier text.")
    source = source_at(payload["source"], size=payload.get("size"))
    with heavy_read():
        return text.tail(source, before=max(0, before), size=settings.TEXT_TAIL_BYTES)


def preview_object(*, rendition: Rendition) -> tuple[bytes, str]:
    """A rendition's stored preview (thumbnail) and its content type."""
    if rendition.viewer != "image" or not rendition.preview_key:
        raise RenderError("This preview has no image.")
    data = ObjectSource(settings.PREVIEW_BUCKET, rendition.preview_key).read(16 * 1024 * 1024)
    return data, rendition.payload.get("thumb_content_type", "image/jpeg")


def full_image_source(*, rendition: Rendition) -> tuple[ObjectSource, str]:
    """The original image, for formats browsers render as images only."""
    payload = rendition.payload
    if rendition.viewer != "image" or not payload.get("full_view") or not payload.get("source"):
        raise RenderError("This image has no full view.")
    return source_at(payload["source"]), payload["content_type"]


def webapp_url(*, rendition: Rendition) -> str:
    """A short-lived URL on the web-app origin for one web-app rendition."""
    token = signing.dumps({"r": rendition.pk, "k": rendition.preview_key}, salt=_WEBAPP_SALT, compress=True)
    return f"{settings.WEBAPP_ORIGIN.rstrip('/')}/app/{token}/"


def webapp_document(*, token: str) -> bytes | None:
    """The HTML a valid, unexpired token names; None for anything else."""
    try:
        claim = signing.loads(token, salt=_WEBAPP_SALT, max_age=settings.WEBAPP_URL_MAX_AGE_S)
    except signing.BadSignature:
        return None
    rendition = Rendition.objects.filter(pk=claim.get("r"), viewer="web_app",
                                         preview_key=claim.get("k")).exclude(preview_key="").first()
    if rendition is None:
        return None
    try:
        return ObjectSource(settings.PREVIEW_BUCKET, rendition.preview_key).read(settings.TEXT_MAX_BYTES)
    except RenderError:
        return None


# --- runs list: progress bars and metric columns (DESIGN.md §5) -----------------------

def run_progress_and_metrics(*, run_ids) -> dict[int, dict]:
    """Per run: the latest ready progress (``{"percent", "message"}`` or None) and its
    metrics (``{name: {"value", "display"}}``, later artifacts win), from current renditions."""
    from django.db.models import F

    rows = (Rendition.objects
            .filter(artifact__run_id__in=list(run_ids), artifact__deleted=False, etag=F("artifact__etag"),
                    status=Rendition.Status.READY, viewer__in=("progress", "metrics"))
            .order_by("artifact__event_time", "artifact_id", "position")
            .values_list("artifact__run_id", "viewer", "payload"))
    out: dict[int, dict] = {}
    for run_id, viewer, payload in rows:
        entry = out.setdefault(run_id, {"progress": None, "metrics": {}})
        if viewer == "progress":
            entry["progress"] = {"percent": payload.get("percent"), "message": payload.get("message", "")}
        else:
            for m in payload.get("metrics", []):
                entry["metrics"][m["name"]] = {"value": m["value"], "display": m["display"]}
    return out


def metric_names(*, runs) -> list[str]:
    """The metric names found in ``runs`` (a queryset from runs_visible_to), sorted."""
    from django.db import connection

    ids = list(runs.values_list("pk", flat=True)[:5000])
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT DISTINCT m->>'name' FROM runs_rendition r JOIN runs_artifact a ON a.id = r.artifact_id,
                      jsonb_array_elements(r.payload->'metrics') m
               WHERE a.run_id = ANY(%s) AND NOT a.deleted AND r.etag = a.etag
                 AND r.viewer = 'metrics' AND r.status = 'ready' ORDER BY 1""", [ids])
        return [name for (name,) in cursor.fetchall()]


def runs_order_by_metric(runs, *, name: str, descending: bool = True):
    """``runs`` sorted by the metric ``name`` (runs without it last); annotates ``metric_value``."""
    from django.db.models import F
    from django.db.models.expressions import RawSQL

    value = RawSQL(
        """(SELECT max((m->>'value')::float8)
              FROM runs_rendition r JOIN runs_artifact a ON a.id = r.artifact_id,
                   jsonb_array_elements(r.payload->'metrics') m
             WHERE a.run_id = runs_run.id AND NOT a.deleted AND r.etag = a.etag
               AND r.viewer = 'metrics' AND r.status = 'ready' AND m->>'name' = %s)""", [name])
    order = F("metric_value").desc(nulls_last=True) if descending else F("metric_value").asc(nulls_last=True)
    return runs.annotate(metric_value=value).order_by(order, "-id")

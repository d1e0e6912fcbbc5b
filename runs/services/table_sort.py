"""Sorted copies of tables, built in the render worker (docs/viewers.md, "Tables").

Sorting reads and parses the whole file (up to TABLE_SORT_MAX_BYTES). That
work never runs in the portal process: the first request for a column queues
``runs.table_sort`` and answers "sorting…"; the worker writes the sorted copy
(``runs.rendering.table.build_sorted``) to the preview bucket, meta last, so
a present meta object means a complete copy; later requests for that column,
ascending or descending, by anyone, read one small range of it.

Keys are per (rendition, column) below the artifact version's preview prefix,
so a new version of the file gets new copies. A failure is stored as a meta
object with an ``error``, which the page shows instead of waiting for ever.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from runs.kinds import Viewer
from runs.models import Rendition
from runs.rendering import parquet, table
from runs.rendering.base import RenderError
from runs.storage import ObjectSource, preview_get, preview_prefix, preview_put, source_at
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.render")

# A column is queued again at most this often per portal process (a page polls meanwhile).
# Queued by name (runs/tasks.py registers it), so this service does not import the tasks.
TABLE_SORT_TASK = "runs.table_sort"
REQUEUE_AFTER_S = 30.0
_requested: dict[str, float] = {}
_requested_lock = threading.Lock()
_meta_cache: dict[str, dict] = {}  # immutable objects: a key's meta never changes once written
_META_CACHE_MAX = 256


def sorted_keys(*, rendition: Rendition, column: int) -> tuple[str, str]:
    """(data key, meta key) of a rendition's sorted copy by ``column`` in the preview bucket."""
    etag = "".join(c if c.isalnum() or c in "_.-" else "_" for c in rendition.etag) or "none"
    base = f"{preview_prefix()}/{rendition.artifact_id}/{etag}/sorted-{rendition.pk}-c{int(column)}"
    return base + ".jsonl", base + ".json"


def sorted_meta(*, rendition: Rendition, column: int) -> dict | None:
    """The meta of the sorted copy, or None if it is not built (yet)."""
    _data_key, meta_key = sorted_keys(rendition=rendition, column=column)
    if meta_key in _meta_cache:
        return _meta_cache[meta_key]
    raw = preview_get(meta_key, 16 * 1024 * 1024)
    if raw is None:
        return None
    meta = json.loads(raw)
    if len(_meta_cache) >= _META_CACHE_MAX:
        _meta_cache.clear()
    _meta_cache[meta_key] = meta
    return meta


def request_sort(*, rendition: Rendition, column: int) -> bool:
    """Queue the sorted copy's build (at most once per REQUEUE_AFTER_S per process); True if queued."""
    _data_key, meta_key = sorted_keys(rendition=rendition, column=column)
    now = time.monotonic()
    with _requested_lock:
        if now - _requested.get(meta_key, -REQUEUE_AFTER_S) < REQUEUE_AFTER_S:
            return False
        _requested[meta_key] = now
        if len(_requested) > 10_000:
            _requested.clear()
    try:
        current_app.send_task(
            TABLE_SORT_TASK,
            kwargs={"rendition_id": rendition.pk, "column": int(column)},
            queue=settings.RENDER_QUEUE,
            expires=600,
        )
    except Exception as exc:  # the broker is down: say so, and ask again on the next request
        with _requested_lock:
            _requested.pop(meta_key, None)
        log_event(
            logger,
            "table_sort_enqueue_failed",
            level=logging.WARNING,
            rendition=rendition.pk,
            error=repr(exc)[:200],
        )
        raise RenderError("Sorting could not be queued right now; try again shortly.") from exc
    return True


def read_sorted(*, rendition: Rendition, meta: dict, start: int, count: int, descending: bool) -> list:
    data_key, _meta_key = sorted_keys(rendition=rendition, column=meta["column"])
    copy = ObjectSource(settings.PREVIEW_BUCKET, data_key)
    return table.read_sorted_page(
        meta,
        lambda offset, length: copy.chunks(256 * 1024, offset=offset, length=length),
        start=start,
        count=count,
        descending=descending,
    )


def table_sort_build(*, rendition_id: int, column: int) -> str:
    """Worker side: build and store the sorted copy; "exists", "built", "failed" or "gone"."""
    rendition = Rendition.objects.filter(pk=rendition_id, viewer=Viewer.TABLE).first()
    if rendition is None or not rendition.payload.get("sortable"):
        return "gone"
    data_key, meta_key = sorted_keys(rendition=rendition, column=column)
    if preview_get(meta_key, 1) is not None:
        return "exists"
    payload = rendition.payload
    started = time.monotonic()
    try:
        source = source_at(payload["source"], size=payload.get("size"))
        if payload.get("format") == parquet.FORMAT:  # sortable only when it decodes within the cap
            body, meta = table.sorted_copy(payload, list(parquet.iter_rows(payload, source)), column=column)
        else:
            data = source.read_all(settings.TABLE_SORT_MAX_BYTES, "The table")
            body, meta = table.build_sorted(payload, [data], column=column)
        status = "built"
    except RenderError as exc:
        body, meta, status = b"", {"column": column, "error": str(exc)}, "failed"
    except MemoryError:
        body, status = b"", "failed"
        meta = {
            "column": column,
            "error": f"Sorting needed more memory than a render worker may use "
            f"({settings.RENDER_WORKER_MAX_MEMORY_MB} MiB).",
        }
    except SoftTimeLimitExceeded:
        body, status = b"", "failed"
        meta = {"column": column, "error": f"Sorting took longer than {settings.RENDER_SOFT_TIME_LIMIT_S} s."}
    # The data first, then the meta: a meta object means its copy is complete.
    if body:
        preview_put(data_key, body, "application/x-ndjson")
    preview_put(meta_key, json.dumps(meta, separators=(",", ":")).encode(), "application/json")
    log_event(
        logger,
        "table_sorted",
        rendition=rendition_id,
        column=column,
        status=status,
        rows=meta.get("rows", 0),
        bytes=len(body),
        duration_ms=(time.monotonic() - started) * 1000,
    )
    return status

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

import io
import json
import logging
import threading
import time

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from minio.error import S3Error

from runs.models import Rendition
from runs.rendering import table
from runs.rendering.base import RenderError, StorageUnavailable
from runs.rendering.objects import ObjectSource, source_at
from runs.storage import minio_client
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.render")

# A column is queued again at most this often per portal process (a page polls meanwhile).
REQUEUE_AFTER_S = 30.0
_requested: dict[str, float] = {}
_requested_lock = threading.Lock()
_meta_cache: dict[str, dict] = {}  # immutable objects: a key's meta never changes once written
_META_CACHE_MAX = 256


def sorted_keys(*, rendition: Rendition, column: int) -> tuple[str, str]:
    """(data key, meta key) of a rendition's sorted copy by ``column`` in the preview bucket."""
    from runs.services.renditions import preview_prefix

    etag = "".join(c if c.isalnum() or c in "_.-" else "_" for c in rendition.etag) or "none"
    base = f"{preview_prefix()}/{rendition.artifact_id}/{etag}/sorted-{rendition.pk}-c{int(column)}"
    return base + ".jsonl", base + ".json"


def sorted_meta(*, rendition: Rendition, column: int) -> dict | None:
    """The meta of the sorted copy, or None if it is not built (yet)."""
    _data_key, meta_key = sorted_keys(rendition=rendition, column=column)
    if meta_key in _meta_cache:
        return _meta_cache[meta_key]
    try:
        resp = minio_client().get_object(settings.PREVIEW_BUCKET, meta_key)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchBucket"):
            return None
        raise StorageUnavailable(f"object storage error {exc.code}") from exc
    except Exception as exc:
        raise StorageUnavailable(f"object storage unreachable: {exc}") from exc
    try:
        meta = json.loads(resp.read(16 * 1024 * 1024))
    finally:
        resp.close()
        resp.release_conn()
    if len(_meta_cache) >= _META_CACHE_MAX:
        _meta_cache.clear()
    _meta_cache[meta_key] = meta
    return meta


def request_sort(*, rendition: Rendition, column: int) -> bool:
    """Queue the sorted copy's build (at most once per REQUEUE_AFTER_S per process); True if queued."""
    from runs.tasks import table_sort

    _data_key, meta_key = sorted_keys(rendition=rendition, column=column)
    now = time.monotonic()
    with _requested_lock:
        if now - _requested.get(meta_key, -REQUEUE_AFTER_S) < REQUEUE_AFTER_S:
            return False
        _requested[meta_key] = now
        if len(_requested) > 10_000:
            _requested.clear()
    try:
        table_sort.apply_async(kwargs={"rendition_id": rendition.pk, "column": int(column)},
                               queue=settings.RENDER_QUEUE, expires=600)
    except Exception as exc:  # the broker is down: say so, and ask again on the next request
        with _requested_lock:
            _requested.pop(meta_key, None)
        log_event(logger, "table_sort_enqueue_failed", level=logging.WARNING, rendition=rendition.pk,
                  error=repr(exc)[:200])
        raise RenderError("Sorting could not be queued right now; try again shortly.") from exc
    return True


def read_sorted(*, rendition: Rendition, meta: dict, start: int, count: int, descending: bool) -> list:
    data_key, _meta_key = sorted_keys(rendition=rendition, column=meta["column"])
    copy = ObjectSource(settings.PREVIEW_BUCKET, data_key)
    return table.read_sorted_page(meta, lambda offset, length: copy.chunks(256 * 1024, offset=offset,
                                                                             length=length),
                                  start=start, count=count, descending=descending)


def table_sort_build(*, rendition_id: int, column: int) -> str:
    """Worker side: build and store the sorted copy; "exists", "built", "failed" or "gone"."""
    rendition = Rendition.objects.filter(pk=rendition_id, viewer=table.VIEWER).first()
    if rendition is None or not rendition.payload.get("sortable"):
        return "gone"
    data_key, meta_key = sorted_keys(rendition=rendition, column=column)
    client = minio_client()
    try:
        client.stat_object(settings.PREVIEW_BUCKET, meta_key)
        return "exists"
    except S3Error as exc:
        if exc.code not in ("NoSuchKey", "NoSuchBucket"):
            raise StorageUnavailable(f"object storage error {exc.code}") from exc
    payload = rendition.payload
    started = time.monotonic()
    try:
        source = source_at(payload["source"], size=payload.get("size"))
        data = source.read_all(settings.TABLE_SORT_MAX_BYTES, "The table")
        body, meta = table.build_sorted(payload, [data], column=column)
        status = "built"
    except RenderError as exc:
        body, meta, status = b"", {"column": column, "error": str(exc)}, "failed"
    except MemoryError:
        body, status = b"", "failed"
        meta = {"column": column, "error": f"Sorting needed more memory than a render worker may use "
                                           f"({settings.RENDER_WORKER_MAX_MEMORY_MB} MiB)."}
    except SoftTimeLimitExceeded:
        body, status = b"", "failed"
        meta = {"column": column, "error": f"Sorting took longer than {settings.RENDER_SOFT_TIME_LIMIT_S} s."}
    from runs.services.renditions import _ensure_preview_bucket

    bucket = _ensure_preview_bucket(client)
    try:
        if body:
            client.put_object(bucket, data_key, io.BytesIO(body), len(body), content_type="application/x-ndjson")
        raw = json.dumps(meta, separators=(",", ":")).encode()
        client.put_object(bucket, meta_key, io.BytesIO(raw), len(raw), content_type="application/json")
    except Exception as exc:
        raise StorageUnavailable(f"cannot store a sorted copy: {exc}") from exc
    log_event(logger, "table_sorted", rendition=rendition_id, column=column, status=status,
              rows=meta.get("rows", 0), bytes=len(body), duration_ms=(time.monotonic() - started) * 1000)
    return status

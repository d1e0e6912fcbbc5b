"""Reading renditions back for the viewers' endpoints: table pages, earlier log text,
preview images, full images, web-app documents behind signed URLs (docs/viewers.md).

Callers pass a rendition they found through ``runs.selectors.viewers``
(access already decided). The web-app origin has no user: it accepts only a
token signed here for one rendition, valid WEBAPP_URL_MAX_AGE_S seconds.
"""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from functools import lru_cache

from django.conf import settings
from django.core import signing

from runs.kinds import Viewer
from runs.models import Rendition
from runs.rendering import parquet, table, text
from runs.rendering.base import RenderError
from runs.storage import ObjectSource, preview_read, source_at

_WEBAPP_SALT = "pipelens.webapp"


@lru_cache(maxsize=64)
def _index(index_key: str) -> tuple:
    # Index objects are immutable (one key per artifact version), so caching is safe.
    data = preview_read(index_key, 64 * 1024 * 1024)
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


def table_page(
    *, rendition: Rendition, start: int, count: int, sort: int | None = None, descending: bool = False
) -> dict:
    """Rows [start, start+count) of a table rendition, optionally sorted.

    Never parses more than a page here: sorted pages come from the worker's
    sorted copy (runs/services/table_sort.py). While it is being built the
    answer is ``{"pending": True, "message": …}`` and the page asks again.
    Raises Busy when VIEWER_MAX_CONCURRENT_READS reads are already running.
    """
    from runs.services import table_sort

    payload = rendition.payload
    if rendition.viewer != Viewer.TABLE or not payload.get("source"):
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
                return {
                    "pending": True,
                    "message": "Sorting this table (in the background)…",
                    "row_count": payload.get("row_count"),
                }
            if meta.get("error"):
                raise RenderError(meta["error"])
            rows = table_sort.read_sorted(
                rendition=rendition, meta=meta, start=start, count=count, descending=descending
            )
            return {
                "start": max(0, start),
                "rows": rows,
                "row_count": payload.get("row_count"),
                "notices": [],
            }
        source = source_at(payload["source"], size=payload.get("size"))
        if payload.get("format") == parquet.FORMAT:
            return parquet.read_page(payload, source, start=start, count=count)
        index = [list(e) for e in _index(payload["index_key"])] if payload.get("index_key") else [[0, 0]]
        return table.read_page(
            payload,
            index,
            lambda offset, length: source.chunks(256 * 1024, offset=offset, length=length),
            start=start,
            count=count,
        )


def text_before(*, rendition: Rendition, before: int) -> dict:
    """The TEXT_TAIL_BYTES of a log that end at byte ``before`` ("load earlier")."""
    payload = rendition.payload
    if rendition.viewer != Viewer.TEXT or not payload.get("source"):
        raise RenderError("This preview has no earlier text.")
    source = source_at(payload["source"], size=payload.get("size"))
    with heavy_read():
        return text.tail(source, before=max(0, before), size=settings.TEXT_TAIL_BYTES)


def preview_object(*, rendition: Rendition) -> tuple[bytes, str]:
    """A rendition's stored preview (thumbnail) and its content type."""
    recipe_png = rendition.viewer == Viewer.RECIPE and (rendition.payload or {}).get("type") == "png"
    if (rendition.viewer != Viewer.IMAGE and not recipe_png) or not rendition.preview_key:
        raise RenderError("This preview has no image.")
    data = preview_read(rendition.preview_key, 16 * 1024 * 1024)
    return data, rendition.payload.get("thumb_content_type", "image/jpeg")


def full_image_source(*, rendition: Rendition) -> tuple[ObjectSource, str]:
    """The original image, for formats browsers render as images only."""
    payload = rendition.payload
    if rendition.viewer != Viewer.IMAGE or not payload.get("full_view") or not payload.get("source"):
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
    rendition = (
        Rendition.objects.filter(
            pk=claim.get("r"), viewer__in=(Viewer.WEB_APP, Viewer.RECIPE), preview_key=claim.get("k")
        )
        .exclude(preview_key="")
        .first()
    )
    if rendition is None:
        return None
    try:
        return preview_read(rendition.preview_key, settings.TEXT_MAX_BYTES)
    except RenderError:
        return None

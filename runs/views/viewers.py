"""Viewer endpoints: table pages, earlier log text, thumbnails, full images,
web-app URLs (docs/viewers.md). Thin: parse, ask runs.selectors.viewers
for the rendition and runs.rendering.readback for its data, shape.

Every endpoint finds the rendition through its visible artifact
(``runs_visible_to``); anything else answers 404, like a missing run.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from runs.kinds import Viewer
from runs.rendering.base import RenderError, StorageUnavailable
from runs.rendering.readback import (
    Busy,
    full_image_source,
    preview_object,
    table_page,
    text_before,
    webapp_url,
)
from runs.selectors.viewers import rendition_get_visible


def _rendition(request, run_id, artifact_id, rendition_id):
    rendition = rendition_get_visible(
        user=request.user, run_id=run_id, artifact_id=artifact_id, rendition_id=rendition_id
    )
    if rendition is None:
        raise Http404("No such preview.")
    return rendition


def _int(value, default: int | None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _json_error(exc: Exception) -> JsonResponse:
    if isinstance(exc, Busy):
        response = JsonResponse({"error": str(exc), "retry": True}, status=503)
        response["Retry-After"] = "1"
        return response
    if isinstance(exc, StorageUnavailable):
        return JsonResponse({"error": "Object storage is not reachable; try again shortly."}, status=503)
    return JsonResponse({"error": str(exc)}, status=409)


@require_GET
@login_required
def table_rows(request, run_id: int, artifact_id: int, rendition_id: int):
    """JSON rows of a table: ?start=&count=&sort=<column>&desc=1.

    202 ``{"pending": true}`` while a sorted copy is being built (ask again);
    503 ``{"retry": true}`` when the process is busy with other reads."""
    rendition = _rendition(request, run_id, artifact_id, rendition_id)
    try:
        page = table_page(
            rendition=rendition,
            start=_int(request.GET.get("start"), 0),
            count=_int(request.GET.get("count"), rendition.payload.get("page_rows", 50)),
            sort=_int(request.GET.get("sort"), None),
            descending=request.GET.get("desc") == "1",
        )
    except (RenderError, StorageUnavailable, Busy) as exc:
        return _json_error(exc)
    return JsonResponse(page, status=202 if page.get("pending") else 200)


@require_GET
@login_required
def text_earlier(request, run_id: int, artifact_id: int, rendition_id: int):
    """JSON: the text of a log before byte ?before=."""
    rendition = _rendition(request, run_id, artifact_id, rendition_id)
    try:
        return JsonResponse(text_before(rendition=rendition, before=_int(request.GET.get("before"), 0)))
    except (RenderError, StorageUnavailable, Busy) as exc:
        return _json_error(exc)


@require_GET
@login_required
def thumbnail(request, run_id: int, artifact_id: int, rendition_id: int):
    rendition = _rendition(request, run_id, artifact_id, rendition_id)
    try:
        data, content_type = preview_object(rendition=rendition)
    except (RenderError, StorageUnavailable):
        raise Http404("No thumbnail.") from None
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "private, max-age=86400"  # one key per artifact version
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@login_required
def full_image(request, run_id: int, artifact_id: int, rendition_id: int):
    """The original image, streamed; only formats Pillow identified as raster images."""
    rendition = _rendition(request, run_id, artifact_id, rendition_id)
    try:
        source, content_type = full_image_source(rendition=rendition)
        chunks = source.chunks(256 * 1024)
        first = next(chunks, b"")
    except (RenderError, StorageUnavailable):
        raise Http404("No full view.") from None

    def stream():
        yield first
        yield from chunks

    response = StreamingHttpResponse(stream(), content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@login_required
def webapp_link(request, run_id: int, artifact_id: int, rendition_id: int):
    """JSON {"url": …}: a fresh signed URL on the web-app origin (the iframe reloads with it)."""
    rendition = _rendition(request, run_id, artifact_id, rendition_id)
    is_recipe_document = rendition.viewer == Viewer.RECIPE and rendition.payload.get("type") in (
        "html",
        "vega_lite",
    )
    if (rendition.viewer != Viewer.WEB_APP and not is_recipe_document) or not rendition.preview_key:
        raise Http404("Not a web app.")
    return JsonResponse({"url": webapp_url(rendition=rendition)})

"""``GET /internal/webapp/<token>``: the portal hands a web-app document to the web-app
origin, which has no database or object store access of its own
(docs/security.md#web-app-origin, docs/deploy.md#network-policy).

The token is the signed, short-lived capability the browser already holds
(runs/rendering/readback.py ``webapp_url``): this endpoint checks it exactly
as the web-app origin used to, so it needs no secret of its own and grants
nothing a token holder could not already get. Anything but a valid,
unexpired token for an existing web-app or recipe document answers the same
404, whatever was wrong.

Answered by a middleware near the top of the stack, like the probes
(vizsite/probes.py), for the same reasons: the web-app origin addresses the
portal by its internal Service name and over plain HTTP, which
``ALLOWED_HOSTS`` and ``SECURE_SSL_REDIRECT`` would refuse; and it has no
session, cookie or form, so sessions, CSRF, login and lockouts have nothing
to do (no cookie is read or set). Nothing is built from the Host header.

The answer must never be a page on the portal's origin, since a browser can
send this request too (the path is on the portal): the untrusted HTML goes
out as ``application/octet-stream``, ``Content-Disposition: attachment``,
``nosniff`` and ``Content-Security-Policy: sandbox`` (no scripts, opaque
origin) even if something rendered it. Its real type travels in
``X-Pipelens-Content-Type``, which only the web-app origin reads.
"""

from __future__ import annotations

import re

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpResponse
from django.utils.decorators import sync_and_async_middleware

PREFIX = "/internal/webapp/"
_PATH = re.compile(r"^/internal/webapp/([A-Za-z0-9_\-:.]{1,4096})$")
CONTENT_TYPE_HEADER = "X-Pipelens-Content-Type"
DOCUMENT_TYPE = "text/html; charset=utf-8"

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
}


def _not_found() -> HttpResponse:
    return HttpResponse(b"Not found.", status=404, content_type="text/plain; charset=utf-8")


def webapp_document_answer(request) -> HttpResponse:
    """The document a valid token names, as opaque bytes; 404 for anything else."""
    from runs.rendering.readback import webapp_document

    match = _PATH.match(request.path_info)
    body = webapp_document(token=match.group(1)) if match and request.method in ("GET", "HEAD") else None
    if body is None:
        response = _not_found()
    else:
        response = HttpResponse(body, content_type="application/octet-stream")
        response["Content-Disposition"] = "attachment"
        response[CONTENT_TYPE_HEADER] = DOCUMENT_TYPE
    for name, value in _HEADERS.items():
        response[name] = value
    return response


def _is_internal(request) -> bool:
    return request.path_info.startswith(PREFIX)


@sync_and_async_middleware
def internal_middleware(get_response):
    """Answer ``/internal/webapp/…`` here (second in MIDDLEWARE); pass everything else on."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            if not _is_internal(request):
                return await get_response(request)
            # Reads the database: on Django's thread for sync code, like a sync view.
            return await sync_to_async(webapp_document_answer)(request)

    else:

        def middleware(request):
            if not _is_internal(request):
                return get_response(request)
            return webapp_document_answer(request)

    return middleware

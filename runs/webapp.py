"""The web-app origin: serves untrusted HTML outputs, nothing else (docs/security.md).

A plain ASGI app, separate from the portal: no sessions, no cookies read or
set, no Django middleware. ``GET /app/<token>/`` answers the document a
valid signed token names, fetched from the portal (WEBAPP_PORTAL_URL, vizsite/internal.py:
this origin has no database or object store access, docs/deploy.md#network-policy;
502/504 when the portal does not answer), under ``Content-Security-Policy: sandbox
allow-scripts`` (scripts run, but in an opaque origin: no cookies, no
storage, no same-origin access to anything) plus WEBAPP_CSP, which by
default lets the document load nothing from and send nothing to the network
(no beacons, no tracking pixels, no fetch). Besides documents it serves
exactly the vendored Vega files of ``VENDOR`` (``/vendor/vega/*.min.js``,
read-only, long cache) so that Vega-Lite recipe outputs can load them under
``script-src 'self'``, and ``/healthz`` (``{"ok": true}``, touching nothing:
the liveness and readiness probe of its pods, docs/deploy.md); any other path
answers 404. Run it on its own origin —
another host name, not just another port of the portal's host, so that
browsers do not even send the portal's cookies here (docs/viewers.md).
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

logger = logging.getLogger("pipelens.webapp")
DOCUMENT_TYPE = "text/html; charset=utf-8"  # vizsite/internal.py DOCUMENT_TYPE

HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"private, no-store"),
    (b"cross-origin-resource-policy", b"cross-origin"),
]
_PATH = re.compile(r"^/app/([A-Za-z0-9_\-:.]+)/?$")

# The only files of the file system this origin serves: request path -> file (runs/static/VENDORED.md).
_VENDOR_DIR = Path(__file__).resolve().parent / "static" / "runs" / "vendor" / "vega"
VENDOR = {
    f"/vendor/vega/{name}": _VENDOR_DIR / name
    for name in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
}
VENDOR_HEADERS = [
    (b"content-type", b"text/javascript; charset=utf-8"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"public, max-age=31536000, immutable"),
    # Asked for by sandboxed (opaque-origin) documents, so cross-origin by definition.
    (b"cross-origin-resource-policy", b"cross-origin"),
]
_vendor_cache: dict[str, bytes] = {}


def _vendor_file(path: str) -> bytes:
    if path not in _vendor_cache:
        _vendor_cache[path] = VENDOR[path].read_bytes()
    return _vendor_cache[path]


class PortalUnavailable(Exception):
    """The portal did not answer (502) or not in time (504): say so, do not pretend 404."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# No proxy from the environment: the portal is an internal address, and a proxy in
# HTTP_PROXY would see every token.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _fetch_document(token: str) -> bytes | None:
    """GET WEBAPP_PORTAL_URL/internal/webapp/<token> (vizsite/internal.py): the HTML, or None
    when the portal says the token names nothing (404). At most TEXT_MAX_BYTES are read."""
    from django.conf import settings

    limit = settings.TEXT_MAX_BYTES
    url = f"{settings.WEBAPP_PORTAL_URL.rstrip('/')}/internal/webapp/{urllib.parse.quote(token, safe='')}"
    request = urllib.request.Request(url, headers={"Accept": "application/octet-stream"})
    try:
        with _opener.open(request, timeout=settings.WEBAPP_PORTAL_TIMEOUT_S) as response:
            if response.headers.get("X-Pipelens-Content-Type") != DOCUMENT_TYPE:
                raise PortalUnavailable(502, "The portal answered something that is not a document.")
            body = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise PortalUnavailable(502, f"The portal answered {exc.code}.") from exc
    except TimeoutError as exc:
        raise PortalUnavailable(504, "The portal did not answer in time.") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise PortalUnavailable(504, "The portal did not answer in time.") from exc
        raise PortalUnavailable(502, "The portal could not be reached.") from exc
    if len(body) > limit:
        raise PortalUnavailable(502, "The document is larger than TEXT_MAX_BYTES.")
    return body


async def _document(token: str) -> bytes | None:
    from django.conf import settings

    try:
        # The socket timeout bounds each read; this bounds the whole answer (a portal
        # trickling bytes). The thread, if left behind, ends at its own socket timeout.
        return await asyncio.wait_for(
            asyncio.to_thread(_fetch_document, token), timeout=2 * settings.WEBAPP_PORTAL_TIMEOUT_S
        )
    except TimeoutError as exc:
        raise PortalUnavailable(504, "The portal did not answer in time.") from exc


def content_security_policy() -> bytes:
    """WEBAPP_CSP, always followed by ``sandbox allow-scripts`` (the opaque origin is not optional)."""
    from django.conf import settings

    policy = settings.WEBAPP_CSP.strip().strip(";").strip()
    return (f"{policy}; sandbox allow-scripts" if policy else "sandbox allow-scripts").encode("latin-1")


async def _respond(send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"content-security-policy", content_security_policy()),
                *HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def application(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope.get("path", "")
    if scope.get("method") in ("GET", "HEAD") and path == "/healthz":
        # No database or store read: a probe must not take the origin down with them.
        await _respond(send, 200, b'{"ok": true}', b"application/json")
        return
    if scope.get("method") in ("GET", "HEAD") and path in VENDOR:
        body = _vendor_file(path)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), *VENDOR_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    match = _PATH.match(path)
    if scope.get("method") not in ("GET", "HEAD") or not match:
        await _respond(send, 404, b"Not found.", b"text/plain; charset=utf-8")
        return
    try:
        body = await _document(match.group(1))
    except PortalUnavailable as exc:
        logger.warning("webapp_portal_unavailable status=%s error=%s", exc.status, exc)
        await _respond(
            send,
            exc.status,
            f"The document could not be loaded: {exc} Try again in a moment.".encode(),
            b"text/plain; charset=utf-8",
        )
        return
    if body is None:
        await _respond(
            send,
            403,
            b"This link has expired or is not valid; reopen the run page.",
            b"text/plain; charset=utf-8",
        )
        return
    await _respond(send, 200, body, DOCUMENT_TYPE.encode())

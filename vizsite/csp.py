"""Content-Security-Policy of the portal's own pages (docs/security.md).

The portal's templates carry no inline script, no inline style and no event
handler attribute (tests/runs/test_csp.py checks the pages), so the policy
can be strict: scripts, styles, fonts and fetches only from the portal's own
origin (and its WebSocket), frames only from the web-app origin
(WEBAPP_ORIGIN), no plugins, no <base>, forms only to the portal, and no
framing of the portal by anyone. Images: the portal's own and data: URIs;
https: images too only when MARKDOWN_ALLOW_REMOTE_IMAGES is set.

A view may set its own policy (the full-image view sends ``sandbox``); this
middleware then leaves it alone. The admin keeps inline styles, which one of
Django's admin templates uses.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.utils.deprecation import MiddlewareMixin

HEADER = "Content-Security-Policy"


def portal_policy(request) -> str:
    try:
        host = request.get_host()
    except DisallowedHost:  # the 400 answering it still gets a policy
        host = ""
    img = "'self' data:" + (" https:" if settings.MARKDOWN_ALLOW_REMOTE_IMAGES else "")
    style = "'self'"
    if request.path.startswith("/admin/"):
        style += " 'unsafe-inline'"
    directives = [
        "default-src 'self'",
        "script-src 'self'",
        f"style-src {style}",
        f"img-src {img}",
        "font-src 'self'",
        f"connect-src 'self' ws://{host} wss://{host}" if host else "connect-src 'self'",
        f"frame-src {settings.WEBAPP_ORIGIN.rstrip('/')}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Adds the portal's policy to every response that has none."""

    def process_response(self, request, response):
        if HEADER not in response:
            response[HEADER] = portal_policy(request)
        return response

"""Web-app (HTML) outputs: stored as is in the portal bucket, served only from the
separate web-app origin (runs/webapp.py) under CSP ``sandbox allow-scripts``.

Nothing here parses or trusts the HTML; the portal's pages embed it through
an iframe without ``allow-same-origin`` and a short-lived signed URL.
"""

from __future__ import annotations

from django.conf import settings

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, Source

VIEWER = Viewer.WEB_APP


def render(source: Source, ctx: Context, *, title: str = "") -> list[Output]:
    data = source.read_all(settings.TEXT_MAX_BYTES, "The HTML file")
    key = ctx.store("app.html", data, "text/html; charset=utf-8")
    return [Output(viewer=VIEWER, title=title or source.name, payload={"bytes": len(data)}, preview_key=key)]

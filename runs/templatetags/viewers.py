"""Template helpers of the viewer partials (runs/templates/runs/viewers/)."""

from django import template

from runs.kinds import Viewer
from runs.rendering.base import human_bytes as _human_bytes
from runs.rendering.markdown import sanitize
from runs.rendering.readback import webapp_url

register = template.Library()


@register.filter
def viewer_template(rendition) -> str:
    """The partial that shows a rendition's payload."""
    viewer = rendition.viewer if rendition.viewer in Viewer.ALL else Viewer.OTHER
    return f"runs/viewers/{viewer}.html"


@register.filter
def human_bytes(size) -> str:
    """A byte count for people, as everywhere in the portal (runs.rendering.base.human_bytes)."""
    return _human_bytes(size)


@register.filter
def clean_html(html: str) -> str:
    """Sanitised again on the way out: stored HTML is never trusted as is (nor are remote
    images kept unless MARKDOWN_ALLOW_REMOTE_IMAGES)."""
    from django.utils.safestring import mark_safe

    return mark_safe(sanitize(html or ""))


@register.filter
def shell_quote(value) -> str:
    """``value`` as one shell word (shlex.quote), for commands the page offers to copy."""
    import shlex

    return shlex.quote(str(value))


@register.filter
def cm_rows(payload: dict) -> list[dict]:
    """Confusion-matrix rows: label, and per cell count, row %, a colour weight 0..1 and its
    shade class ``cm-w0``…``cm-w20`` (5 % steps: a class, not a style attribute, so the
    portal's CSP needs no inline styles)."""
    rows = []
    for label, counts, percent in zip(
        payload.get("labels", []), payload.get("counts", []), payload.get("percent", []), strict=False
    ):
        rows.append(
            {
                "label": label,
                "cells": [
                    {
                        "count": c,
                        "percent": p,
                        "weight": round(p / 100, 3),
                        "dark": p >= 55,
                        "shade": f"cm-w{max(0, min(20, round(float(p) / 5)))}",
                    }
                    for c, p in zip(counts, percent, strict=False)
                ],
            }
        )
    return rows


@register.simple_tag
def webapp_src(rendition) -> str:
    """A fresh short-lived URL of a web-app rendition on the separate origin."""
    return webapp_url(rendition=rendition)


@register.simple_tag
def payload_json(rendition, prefix: str):
    """The payload as a JSON <script> element with id ``<prefix>-<rendition id>``."""
    from django.utils.html import json_script

    return json_script(rendition.payload, f"{prefix}-{rendition.pk}")

"""Progress: ``progress.json`` (``current``, ``total``, ``message``) or text holding a percentage.

The last percentage in a text wins (a log of "10% … 40%" shows 40 %).
"""

from __future__ import annotations

import re

from django.conf import settings

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, RenderError, Source, decode_text, finite, load_json

VIEWER = Viewer.PROGRESS
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")


def parse(text: str) -> dict:
    stripped = text.strip()
    if stripped.startswith("{"):
        doc = load_json(stripped, "progress.json")
        if not isinstance(doc, dict):
            raise RenderError("progress.json needs an object with current and total.")
        current = finite(doc.get("current", 0), "progress.json's current")
        total = finite(doc.get("total", 0), "progress.json's total")
        if total <= 0:
            raise RenderError("progress.json needs a total greater than zero.")
        percent = max(0.0, min(100.0, 100 * current / total))
        return {
            "percent": round(percent, 1),
            "current": current,
            "total": total,
            "message": str(doc.get("message", ""))[:500],
        }
    found = _PERCENT.findall(text)
    if not found:
        raise RenderError("No progress found: expected progress.json or a line like '40%'.")
    percent = max(0.0, min(100.0, float(found[-1])))
    last_line = next((line for line in reversed(text.splitlines()) if _PERCENT.search(line)), "")
    return {"percent": percent, "current": None, "total": None, "message": last_line.strip()[:500]}


def render(source: Source, ctx: Context, *, title: str = "") -> list[Output]:
    text, _ = decode_text(source.read_all(min(settings.JSON_MAX_BYTES, 1024 * 1024), "The progress file"))
    return [Output(viewer=VIEWER, title=title or "Progress", payload=parse(text))]

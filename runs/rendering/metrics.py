"""Metrics: KFP ``mlpipeline-metrics`` (``{"metrics": [{name, numberValue, format}]}``) as a table.

``format: PERCENTAGE`` values are shown ×100 with a % sign; the raw value is
kept for sorting (the runs list reads ``payload["metrics"]``).
"""

from __future__ import annotations

import math

from django.conf import settings

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, RenderError, Source, decode_text, load_json

VIEWER = Viewer.METRICS


def parse(text: str) -> dict:
    doc = load_json(text, "The metrics file")
    items = doc.get("metrics") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise RenderError('The metrics file needs a "metrics" list.')
    metrics, notices = [], []
    for item in items[:200]:
        try:
            name = str(item["name"])[:200]
            value = float(item["numberValue"])
        except (KeyError, TypeError, ValueError, OverflowError):
            notices.append(f"Skipped a metric without a name and numeric numberValue: {str(item)[:80]}")
            continue
        if not math.isfinite(value):
            notices.append(f"Skipped {name}: not a finite number.")
            continue
        fmt = str(item.get("format", "RAW")).upper()
        shown = f"{value * 100:.2f}%" if fmt == "PERCENTAGE" else f"{value:.6g}"
        metrics.append({"name": name, "value": value, "format": fmt, "display": shown})
    if not metrics:
        raise RenderError("The metrics file lists no valid metric.")
    return {"metrics": metrics, "notices": notices}


def render(source: Source, ctx: Context, *, title: str = "") -> list[Output]:
    text, _ = decode_text(source.read_all(settings.JSON_MAX_BYTES, "The metrics file"))
    return [Output(viewer=VIEWER, title=title or "Metrics", payload=parse(text))]

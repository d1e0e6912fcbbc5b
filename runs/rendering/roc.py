"""ROC curve: points, AUC (trapezoid over the whole curve), thresholds for hover.

Curves longer than ROC_MAX_POINTS are downsampled with Largest-Triangle-
Three-Buckets, which keeps the visual shape (corners survive), always keeping
the first and last points; the AUC is computed before downsampling.
"""

from __future__ import annotations

import csv
import io
import math

from django.conf import settings

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, RenderError, Source, decode_text

VIEWER = Viewer.ROC


def lttb(points: list[tuple[float, float, float | None]], n: int) -> list:
    """Largest-Triangle-Three-Buckets downsampling of (x, y, extra) points to n."""
    if n >= len(points) or n < 3:
        return points
    out = [points[0]]
    bucket = (len(points) - 2) / (n - 2)
    a = 0
    for i in range(n - 2):
        lo, hi = int(i * bucket) + 1, int((i + 1) * bucket) + 1
        nlo, nhi = hi, min(int((i + 2) * bucket) + 1, len(points))
        nxt = points[nlo:nhi] or [points[-1]]
        cx = sum(p[0] for p in nxt) / len(nxt)
        cy = sum(p[1] for p in nxt) / len(nxt)
        ax, ay = points[a][0], points[a][1]
        best, best_area = lo, -1.0
        for j in range(lo, min(hi, len(points) - 1)):
            area = abs((ax - cx) * (points[j][1] - ay) - (ax - points[j][0]) * (cy - ay))
            if area > best_area:
                best, best_area = j, area
        out.append(points[best])
        a = best
    out.append(points[-1])
    return out


def curve(
    text: str, *, schema: list[dict] | None = None, max_points: int = 500, overlay_points: int | None = None
) -> dict:
    try:  # newline="": "\r" and "\r\n" end lines too
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error as exc:
        raise RenderError(f"The ROC curve is not readable CSV: {exc}") from exc
    names = [c.get("name", "").lower() for c in schema] if schema else None
    if rows and rows[0] and rows[0][0].strip().lower() == "fpr":
        names = [c.strip().lower() for c in rows[0]]
        rows = rows[1:]
    names = names or ["fpr", "tpr", "thresholds"]
    try:
        f_i, t_i = names.index("fpr"), names.index("tpr")
    except ValueError as exc:
        raise RenderError("A ROC curve needs the columns fpr and tpr.") from exc
    th_i = next((names.index(n) for n in ("thresholds", "threshold") if n in names), None)
    points, skipped = [], 0
    for number, row in enumerate(rows, start=1):
        try:
            fpr, tpr = float(row[f_i]), float(row[t_i])
            threshold = float(row[th_i]) if th_i is not None and th_i < len(row) else None
        except (IndexError, ValueError):
            skipped += 1
            continue
        for name, value in (("fpr", fpr), ("tpr", tpr)):
            if not math.isfinite(value):
                raise RenderError(
                    f"Row {number} of the ROC curve has {name} = {row[f_i if name == 'fpr' else t_i]}, "
                    f"which is not a finite number."
                )
        # scikit-learn's roc_curve writes inf as the first threshold: shown as "—".
        if threshold is not None and not math.isfinite(threshold):
            threshold = None
        points.append((fpr, tpr, threshold))
    if len(points) < 2:
        raise RenderError("The ROC curve has fewer than two valid fpr,tpr points.")
    points.sort(key=lambda p: (p[0], p[1]))
    auc = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(points, points[1:], strict=False))
    if not math.isfinite(auc):
        raise RenderError("The ROC curve's values are too large: its area is not a finite number.")
    shown = lttb(points, max_points)
    notices = [f"{skipped} rows were not numeric fpr,tpr pairs and were skipped."] if skipped else []
    if len(shown) < len(points):
        notices.append(f"{len(points):,} points drawn as {len(shown)} (shape-preserving downsampling).")
    out = {
        "fpr": [p[0] for p in shown],
        "tpr": [p[1] for p in shown],
        "thresholds": [p[2] for p in shown],
        "auc": round(auc, 4),
        "points": len(points),
        "notices": notices,
    }
    if overlay_points and len(shown) > overlay_points:
        # The compare page overlays up to 50 curves (docs/compare.md): each cut again, here
        # once, rather than in every request of the page.
        small = lttb(shown, overlay_points)
        out["overlay"] = {
            "fpr": [p[0] for p in small],
            "tpr": [p[1] for p in small],
            "thresholds": [p[2] for p in small],
        }
    return out


def render(source: Source, ctx: Context, *, schema=None, title: str = "") -> list[Output]:
    text, _ = decode_text(source.read_all(settings.TEXT_MAX_BYTES, "The ROC CSV"))
    return [
        Output(
            viewer=VIEWER,
            title=title or "ROC curve",
            payload=curve(
                text,
                schema=schema,
                max_points=settings.ROC_MAX_POINTS,
                overlay_points=settings.COMPARE_ROC_POINTS,
            ),
        )
    ]

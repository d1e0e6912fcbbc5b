"""Confusion matrix: counts and row-normalised percentages, labels in the declared order.

Input: CSV rows ``target,predicted,count`` (KFP writes labels² rows, no
header row when a ``schema`` is given); an optional ``labels`` list fixes the
order, labels seen only in the data follow in order of appearance.
"""

from __future__ import annotations

import csv
import io
import math

from django.conf import settings

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, RenderError, Source, decode_text

VIEWER = Viewer.CONFUSION_MATRIX


def matrix(text: str, *, labels: list[str] | None = None, schema: list[dict] | None = None) -> dict:
    try:  # newline="": "\r" and "\r\n" end lines too
        rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error as exc:
        raise RenderError(f"The confusion matrix is not readable CSV: {exc}") from exc
    names = [c.get("name", "") for c in schema] if schema else None
    if rows and [c.strip().lower() for c in rows[0][:3]] in (["target", "predicted", "count"],):
        names = [c.strip().lower() for c in rows[0]]
        rows = rows[1:]
    names = [n.lower() for n in (names or ["target", "predicted", "count"])]
    try:
        t_i, p_i, c_i = names.index("target"), names.index("predicted"), names.index("count")
    except ValueError as exc:
        raise RenderError("A confusion matrix needs the columns target, predicted and count.") from exc
    order = [str(label) for label in labels or []]
    counts: dict[tuple[str, str], float] = {}
    skipped = 0
    for number, row in enumerate(rows, start=1):
        try:
            target, predicted, count = row[t_i].strip(), row[p_i].strip(), float(row[c_i])
        except (IndexError, ValueError):
            skipped += 1
            continue
        if not math.isfinite(count):
            raise RenderError(
                f"Row {number} of the confusion matrix has count = {row[c_i].strip()[:40]}, "
                f"which is not a finite number."
            )
        for label in (target, predicted):
            if label not in order:
                order.append(label)
        counts[(target, predicted)] = counts.get((target, predicted), 0) + count
    cap = settings.CONFUSION_MATRIX_MAX_LABELS
    if len(order) > cap:
        raise RenderError(f"The confusion matrix has {len(order)} labels, more than the {cap} shown.")
    if not counts:
        raise RenderError("The confusion matrix has no valid target,predicted,count rows.")
    grid = [[counts.get((t, p), 0) for p in order] for t in order]
    if not all(math.isfinite(sum(row)) for row in grid) or not math.isfinite(sum(map(sum, grid))):
        raise RenderError("The confusion matrix's counts are too large: their sum is not a finite number.")
    grid = [[int(v) if float(v).is_integer() else v for v in row] for row in grid]
    percent = []
    for row in grid:
        total = sum(row)
        percent.append([round(100 * v / total, 1) if total else 0.0 for v in row])
    notices = [f"{skipped} rows were not target,predicted,count and were skipped."] if skipped else []
    return {
        "labels": order,
        "counts": grid,
        "percent": percent,
        "total": sum(map(sum, grid)),
        "notices": notices,
    }


def render(source: Source, ctx: Context, *, labels=None, schema=None, title: str = "") -> list[Output]:
    text, _ = decode_text(source.read_all(settings.TEXT_MAX_BYTES, "The confusion matrix CSV"))
    return [
        Output(
            viewer=VIEWER,
            title=title or "Confusion matrix",
            payload=matrix(text, labels=labels, schema=schema),
        )
    ]

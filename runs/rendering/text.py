"""Text and logs: the last TEXT_TAIL_BYTES, read with one ranged request.

Each new version of the key re-renders, so a growing log's tail follows the
writes; "load earlier" pages backwards through the same object
(runs/views/viewers.py).
"""

from __future__ import annotations

from django.conf import settings

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, Source, decode_text, looks_binary

VIEWER = Viewer.TEXT


def tail(source: Source, *, before: int | None = None, size: int) -> dict:
    """``size`` bytes ending at ``before`` (default: the end), cut to whole lines."""
    end = source.size if before is None else min(before, source.size or 0)
    start = max(0, (end or 0) - size)
    data = source.read(end - start, offset=start) if end else b""
    if start > 0 and b"\n" in data:
        cut = data.index(b"\n") + 1  # drop the partial first line
        data, start = data[cut:], start + cut
    binary = looks_binary(data[:4096])
    text, _ = decode_text(data)
    return {
        "text": "(binary data)" if binary else text,
        "start": start,
        "end": end,
        "size": source.size,
        "truncated": start > 0,
        "binary": binary,
    }


def render(source: Source, ctx: Context, *, title: str = "") -> list[Output]:
    payload = tail(source, size=settings.TEXT_TAIL_BYTES)
    payload["source"] = source.location() or (ctx.store_source(source) if ctx.store_source else {})
    return [Output(viewer=VIEWER, title=title or source.name, payload=payload)]

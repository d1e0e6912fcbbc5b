"""Anything else: size, type and a download link."""

from __future__ import annotations

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, Source

VIEWER = Viewer.OTHER


def render(source: Source, ctx: Context, *, title: str = "") -> list[Output]:
    return [
        Output(
            viewer=VIEWER,
            title=title or source.name,
            payload={"size": source.size, "content_type": source.content_type},
        )
    ]

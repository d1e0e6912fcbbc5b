"""Markdown: markdown-it-py with raw HTML disabled, then nh3 (an allow-list sanitiser).

Two layers on purpose: markdown-it escapes inline HTML, and nh3 removes
anything a future parser option might let through (``javascript:`` links,
event handlers). Links get ``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

import nh3
from django.conf import settings
from markdown_it import MarkdownIt

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, Source, decode_text

VIEWER = Viewer.MARKDOWN
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")


def to_html(text: str) -> str:
    return nh3.clean(_md.render(text), link_rel="noopener noreferrer nofollow",
                     url_schemes={"http", "https", "mailto"})


def render(source: Source, ctx: Context, *, title: str = "") -> list[Output]:
    text, replaced = decode_text(source.read_all(settings.TEXT_MAX_BYTES, "The Markdown file"))
    notices = ["Bytes that are not valid UTF-8 were replaced with �."] if replaced else []
    return [Output(viewer=VIEWER, title=title or source.name,
                   payload={"html": to_html(text), "notices": notices})]

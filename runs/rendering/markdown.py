"""Markdown: markdown-it-py with raw HTML disabled, then nh3 (an allow-list sanitiser).

Two layers on purpose: markdown-it escapes inline HTML, and nh3 removes
anything a future parser option might let through (``javascript:`` links,
event handlers). Links get ``rel="noopener noreferrer nofollow"``.

Images: ``![alt](url)`` would make every reader's browser fetch ``url`` (a
tracking pixel tells its host who read the report, and when). Unless
MARKDOWN_ALLOW_REMOTE_IMAGES is set they become links reading
"[image: alt]"; the portal's CSP blocks remote images as well. Files over
MARKDOWN_MAX_BYTES are refused: markdown-it-py is slow on hostile input.
"""

from __future__ import annotations

import nh3
from django.conf import settings
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, Source, decode_text

VIEWER = Viewer.MARKDOWN
_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")


def _image(self, tokens, idx, options, env):
    if settings.MARKDOWN_ALLOW_REMOTE_IMAGES:
        return self.image(tokens, idx, options, env)
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env) or "image"
    env["remote_images"] = env.get("remote_images", 0) + 1
    return (
        f'<a href="{escapeHtml(token.attrGet("src") or "")}" class="md-image">'
        f"{escapeHtml('[image: ' + alt + ']')}</a>"
    )


_md.add_render_rule("image", _image)


def allowed_tags() -> set[str]:
    """nh3's tags, without ``img`` unless remote images are allowed."""
    return set(nh3.ALLOWED_TAGS) if settings.MARKDOWN_ALLOW_REMOTE_IMAGES else set(nh3.ALLOWED_TAGS) - {"img"}


def sanitize(html: str) -> str:
    """The one HTML cleaning policy: when Markdown is rendered, and again when stored HTML is
    shown (runs/templatetags/viewers.py ``clean_html``)."""
    return nh3.clean(
        html,
        tags=allowed_tags(),
        link_rel="noopener noreferrer nofollow",
        url_schemes={"http", "https", "mailto"},
    )


def to_html(text: str, env: dict | None = None) -> str:
    return sanitize(_md.render(text, env if env is not None else {}))


def render(source: Source, ctx: Context, *, title: str = "") -> list[Output]:
    text, replaced = decode_text(source.read_all(settings.MARKDOWN_MAX_BYTES, "The Markdown file"))
    notices = ["Bytes that are not valid UTF-8 were replaced with �."] if replaced else []
    env: dict = {}
    html = to_html(text, env)
    if env.get("remote_images"):
        notices.append(
            f"{env['remote_images']} remote image(s) are shown as links: loading them would tell "
            f"their host who reads this page."
        )
    return [Output(viewer=VIEWER, title=title or source.name, payload={"html": html, "notices": notices})]

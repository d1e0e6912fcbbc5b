"""The compare page's largest, most repetitive markup, built with plain escaping: the matching
table, the other-files table and the image grid hold a cell per run and artifact (2,000 for
20 runs × 100 artifacts), where a template include or ``{% url %}`` per cell cost most of the
page's time (docs/performance.md). Same approach as the run page's artifact rows
(runs/views/pages.py).

The side-by-side rows of the sections (confusion matrices, Markdown, HTML, logs, progress,
unmerged tables) are built here too, 120 cells in that page: the header row, the cell wrapper
and the bodies of the viewers those sections show, the latter in the SAME markup as the run
page's partials runs/templates/runs/viewers/<viewer>.html (tests/runs/test_compare_html.py
renders both and compares them). Any other viewer's body goes through its partial."""

from __future__ import annotations

from html import escape as esc

from django.template import Context
from django.template.defaultfilters import floatformat
from django.template.loader import get_template
from django.urls import reverse
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from runs.kinds import Viewer
from runs.models import Rendition
from runs.rendering.markdown import sanitize
from runs.rendering.readback import webapp_url
from runs.selectors.compare import Comparison, Row

_A, _B, _C = 111111111, 222222222, 333333333


def _url_format(name: str, n: int) -> str:
    """A ``str.format`` template of a URL with ``n`` integer arguments (one reverse, not one per cell)."""
    url = reverse(name, args=[_A, _B, _C][:n])
    return url.replace(str(_A), "{0}").replace(str(_B), "{1}").replace(str(_C), "{2}")


def _head(c: Comparison, first: str, run_url: str) -> str:
    cells = "".join(
        f'<th scope="col" data-run="{run.pk}"><a href="{run_url.format(run.pk)}">{esc(run.name)}</a> '
        f"<small>#{run.pk}</small></th>"
        for run in c.runs
    )
    return f'<thead><tr><th scope="col" class="row-head">{esc(first)}</th>{cells}</tr></thead>'


def names_table_html(c: Comparison, rows: list[Row], *, first: str, table_class: str) -> SafeString:
    """Rows × runs of artifact names linking to their pages ("—" where a run has none)."""
    run_url = _url_format("runs:detail", 1)
    artifact_url = _url_format("runs:artifact", 2)
    body = []
    for row in rows:
        cells = "".join(
            '<td class="absent">—</td>'
            if cell is None
            else f'<td data-pair="{cell.run_id}:{cell.artifact.pk}" data-key="{esc(cell.base_key)}">'
            f'<a href="{artifact_url.format(cell.run_id, cell.artifact.pk)}">'
            f"{esc(cell.artifact.name)}</a></td>"
            for cell in row.cells
        )
        body.append(
            f'<tr data-key="{esc(row.key)}"><th scope="row" class="row-head">{esc(row.key)} '
            f"<small>{esc(row.viewer)}</small></th>{cells}</tr>"
        )
    return mark_safe(
        f'<div class="table-scroll wide"><table class="cmp {table_class}">{_head(c, first, run_url)}'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def image_grid_html(c: Comparison) -> SafeString:
    """Runs × image series; each cell holds every step's thumbnail, all but the last hidden
    (compare.js's slider shows one step; hidden lazy images are not fetched)."""
    if not c.images:
        return mark_safe('<p class="empty">— no images in these runs.</p>')
    run_url = _url_format("runs:detail", 1)
    thumb_url = _url_format("viewers:thumbnail", 3)
    heads = []
    for i, series in enumerate(c.images):
        steps = series["steps"]
        slider = ""
        if series["slider"]:
            numbers = ",".join(str(s["n"]) for s in steps)
            slider = (
                f'<br><input type="range" class="series-slider" min="0" max="{len(steps) - 1}" '
                f'value="{len(steps) - 1}" step="1" aria-label="Step of {esc(series["name"])}" '
                f'data-series="{i}" data-steps="{numbers}">'
                f'<output class="series-step">{steps[-1]["n"]}</output>'
            )
        heads.append(
            f'<th scope="col" class="series-head" data-series="{i}">{esc(series["name"])}{slider}</th>'
        )
    body = []
    for col, run in enumerate(c.runs):
        cells = []
        for i, series in enumerate(c.images):
            frames = []
            last = len(series["steps"]) - 1
            for j, step in enumerate(series["steps"]):
                cell = step["row"].cells[col]
                if cell is None:
                    inner = '<p class="absent">—</p>'
                elif cell.rendition is None:
                    inner = '<p class="rendition-wait">Waiting for the preview…</p>'
                elif cell.rendition.status == Rendition.Status.FAILED:
                    inner = f'<p class="rendition-error">No preview: {esc(cell.rendition.error)}</p>'
                elif cell.rendition.status == Rendition.Status.READY:
                    p = cell.rendition.payload
                    src = thumb_url.format(cell.run_id, cell.artifact.pk, cell.rendition.pk)
                    width, height = esc(str(p.get("thumb_width", ""))), esc(str(p.get("thumb_height", "")))
                    inner = (
                        f'<img class="thumb" src="{src}" alt="{esc(cell.artifact.name)}" loading="lazy" '
                        f'width="{width}" height="{height}">'
                    )
                else:
                    inner = '<p class="rendition-wait">Rendering…</p>'
                hidden = "" if j == last else " hidden"
                frames.append(f'<div class="series-frame" data-step="{j}"{hidden}>{inner}</div>')
            cells.append(f'<td class="series-cell" data-series="{i}">{"".join(frames)}</td>')
        body.append(
            f'<tr><th scope="row" class="row-head"><a href="{run_url.format(run.pk)}">{esc(run.name)}</a> '
            f"<small>#{run.pk}</small></th>{''.join(cells)}</tr>"
        )
    return mark_safe(
        '<div class="table-scroll wide"><table class="cmp image-grid"><thead><tr>'
        f'<th scope="col" class="row-head">Run</th>{"".join(heads)}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _v(value) -> str:
    """``{{ value }}`` as the compare templates render it ({% localize off %}, autoescape on)."""
    kind = type(value)
    if kind is str:
        return esc(value)
    if kind is int:
        return str(value)
    return conditional_escape(localize(value, use_l10n=False))


def head_html(c: Comparison, head: str = "") -> SafeString:
    """The runs' header row of a section's table (``head`` over the row names)."""
    run_url = _url_format("runs:detail", 1)
    cells = "".join(
        f'<th scope="col" data-run="{run.pk}"><a href="{run_url.format(run.pk)}">{_v(run.name)}</a> '
        f"<small>#{run.pk}</small></th>"
        for run in c.runs
    )
    first = _v(head or "")
    return mark_safe(f'<thead><tr><th scope="col" class="row-head">{first}</th>{cells}</tr></thead>\n')


class _Urls:
    """The URL templates a section's cells need, reversed once per section."""

    def __init__(self):
        self.artifact = _url_format("runs:artifact", 2)
        self.text_earlier = _url_format("viewers:text_earlier", 3)
        self.webapp_link = _url_format("viewers:webapp_link", 3)


def rows_html(c: Comparison, rows: list[Row]) -> SafeString:
    """Matched rows side by side, a cell per run (or a line saying there are none)."""
    if not rows:
        return mark_safe('<p class="empty">— none of the compared runs has one.</p>\n')
    urls = _Urls()
    body = []
    for row in rows:
        cells = "".join(_cell_html(cell, urls) for cell in row.cells)
        key = _v(row.key)
        body.append(f'<tr data-key="{key}"><th scope="row" class="row-head">{key}</th>{cells}</tr>')
    return mark_safe(
        f'<div class="table-scroll wide"><table class="cmp">{head_html(c, "Artifact")}\n'
        f"<tbody>{''.join(body)}</tbody></table></div>\n\n"
    )


def _cell_html(cell, urls: _Urls) -> str:
    """One run's cell: its rendition's body (or why there is none) and the artifact's link."""
    if cell is None:
        return '<td class="absent">—</td>\n'
    r, artifact = cell.rendition, cell.artifact
    if r is None:
        body = '<p class="rendition-wait">Waiting for the preview…</p>\n'
    elif r.status == "failed":
        body = f'<p class="rendition-error" role="note"><strong>No preview:</strong> {_v(r.error)}</p>\n'
    elif r.payload:
        wait = "" if r.status == "ready" else '<p class="rendition-wait">Still working on it…</p>'
        body = (
            f'{wait}<section class="rendition status-{_v(r.status)}" data-viewer="{_v(r.viewer)}">'
            f"{_viewer_html(r, artifact, urls)}</section>\n"
        )
    else:
        body = "Rendering the preview…" if r.status == "rendering" else "Preview queued…"
        body = f'<p class="rendition-wait">{body}</p>'
    return (
        f'<td class="cell" data-run="{_v(cell.run_id)}" data-artifact="{_v(artifact.pk)}">\n{body}\n'
        f'<p class="cell-name"><a href="{urls.artifact.format(cell.run_id, artifact.pk)}">'
        f"{_v(artifact.name)}</a></p></td>\n"
    )


def _viewer_html(r, artifact, urls: _Urls) -> str:
    """The rendition's body, as its runs/templates/runs/viewers/ partial renders it."""
    build = _VIEWERS.get(r.viewer)
    if build is not None:
        return build(r, artifact, urls)
    from runs.templatetags.viewers import viewer_template

    template = get_template(viewer_template(r)).template
    return template.render(Context({"r": r, "artifact": artifact}, use_l10n=False))


def _confusion_html(r, artifact, urls: _Urls) -> str:
    from runs.templatetags.viewers import cm_rows

    p = r.payload
    heads = "".join(f'<th scope="col">{_v(label)}</th>' for label in p.get("labels") or ())
    body = []
    for row in cm_rows(p):
        cells = "".join(
            f'\n      <td class="{_v(c["shade"])}{" dark" if c["dark"] else ""}">'
            f'<span class="cm-count">{_v(c["count"])}</span>'
            f'<span class="cm-pct">{_v(c["percent"])}%</span></td>'
            for c in row["cells"]
        )
        body.append(f'<tr><th scope="row">{_v(row["label"])}</th>{cells}</tr>')
    return (
        '<div class="cm-viewer">\n'
        f'  <p class="facts">{_v(p.get("total", ""))} examples · rows: target, columns: predicted ·\n'
        '    <label><input type="checkbox" class="cm-normalise"> row-normalised %</label></p>\n'
        '  <div class="table-scroll"><table class="cm">\n'
        f'    <thead><tr><th scope="col">target ↓ / predicted →</th>{heads}</tr></thead>\n'
        f"    <tbody>{''.join(body)}</tbody>\n"
        "  </table></div>\n</div>\n"
    )


def _markdown_html(r, artifact, urls: _Urls) -> str:
    return f'<div class="markdown-body">{sanitize(r.payload.get("html") or "")}</div>\n'


def _web_app_html(r, artifact, urls: _Urls) -> str:
    link = urls.webapp_link.format(artifact.run_id, artifact.pk, r.pk)
    return (
        f'<div class="webapp-viewer" data-url="{link}">\n'
        '  <iframe class="webapp" sandbox="allow-scripts" referrerpolicy="no-referrer"\n'
        f'          src="{_v(webapp_url(rendition=r))}" '
        f'title="{_v(r.title)} (web app output, sandboxed)"></iframe>\n'
        '  <p class="facts">Shown sandboxed from a separate origin. '
        '<button type="button" class="webapp-reload">Reload</button></p>\n</div>\n'
    )


def _text_html(r, artifact, urls: _Urls) -> str:
    p = r.payload
    earlier = urls.text_earlier.format(artifact.run_id, artifact.pk, r.pk)
    more = (
        '<p><button type="button" class="load-earlier">Load earlier</button> '
        '<span class="facts">showing the end of the file</span></p>'
        if p.get("truncated")
        else ""
    )
    return (
        f'<div class="text-viewer" data-earlier-url="{earlier}" data-start="{_v(p.get("start", ""))}">\n'
        f"  {more}\n"
        f'  <pre class="log" tabindex="0">{_v(p.get("text", ""))}</pre>\n</div>\n'
    )


def _progress_html(r, artifact, urls: _Urls) -> str:
    p = r.payload
    percent = _v(p.get("percent", ""))
    total = ""
    if p.get("total"):
        total = (
            f'<span class="facts">{_v(floatformat(p.get("current", ""), "-2"))} / '
            f"{_v(floatformat(p['total'], '-2'))}</span>"
        )
    message = f'<span class="message">{_v(p["message"])}</span>' if p.get("message") else ""
    return (
        '<div class="progress-viewer">\n'
        f'  <progress max="100" value="{percent}" aria-label="Progress">{percent}%</progress>\n'
        f'  <span class="percent">{percent}%</span>\n'
        f"  {total}\n  {message}\n</div>\n"
    )


_VIEWERS = {
    Viewer.CONFUSION_MATRIX: _confusion_html,
    Viewer.MARKDOWN: _markdown_html,
    Viewer.WEB_APP: _web_app_html,
    Viewer.TEXT: _text_html,
    Viewer.PROGRESS: _progress_html,
}

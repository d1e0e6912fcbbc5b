"""The compare page's largest, most repetitive markup, built with plain escaping: the matching
table, the other-files table and the image grid hold a cell per run and artifact (2,000 for
20 runs × 100 artifacts), where a template include or ``{% url %}`` per cell cost most of the
page's time (docs/performance.md). Same approach as the run page's artifact rows
(runs/views/pages.py)."""

from __future__ import annotations

from html import escape as esc

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from runs.models import Rendition
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

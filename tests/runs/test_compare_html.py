"""runs/views/compare_html.py's side-by-side cells against the viewer partials they stand in for.

The compare page builds the bodies of its section viewers in Python (a template include per
cell cost most of the page's time, docs/performance.md); the run page keeps the partials in
runs/templates/runs/viewers/. Each case renders both, as the compare page's template did
(``{% localize off %}``, autoescape on), and needs them equal: a partial edited without its
Python twin fails here. Pure: no database (the URLs are reversed, nothing is read)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.template import Context
from django.template.loader import get_template

from runs.selectors.compare import Cell, Comparison, Row, _RenditionRow
from runs.views.compare_html import _cell_html, _Urls, _viewer_html, rows_html

HOSTILE = "<script>alert(\"x\")</script> & 'q'"


def rendition(viewer, payload, *, status="ready", title="out/file", error="", rid=31):
    stamp = "2026-11-29 06:00:00+00"
    return _RenditionRow(rid, 7, 0, viewer, title, status, error, payload, "prev/key", stamp)


ARTIFACT = SimpleNamespace(run_id=5, pk=7, id=7, key="b/k", name="step/file <1>.txt", kind="text")

CASES = [
    (
        "confusion_matrix",
        {
            "labels": ["a", "<b>"],
            "counts": [[3, 1], [0, 4]],
            "percent": [[75.0, 25.0], [0.0, 100.0]],
            "total": 8,
        },
    ),
    ("confusion_matrix", {"labels": [], "counts": [], "percent": []}),
    ("markdown", {"html": "<h1>Run</h1><p>Some <em>notes</em><script>x()</script></p>"}),
    ("markdown", {"size": 3}),
    ("web_app", {"size": 100}),
    ("text", {"text": HOSTILE + "\nline 2\n", "start": 120, "truncated": True}),
    ("text", {"text": "epoch 1 loss 0.9\n", "start": 0, "truncated": False}),
    ("text", {"text": None}),
    ("progress", {"percent": 50.0, "current": 5, "total": 10, "message": HOSTILE}),
    ("progress", {"percent": 33.333, "current": 1.0 / 3, "total": 3.5}),
    ("progress", {"percent": 0, "current": 0, "total": 0, "message": ""}),
    ("progress", {"percent": 7}),
]


def _same_token(html: str) -> str:
    # The web-app URL is signed with the time: two renderings a second apart differ there only.
    return re.sub(r"/app/[^/\"]+/", "/app/TOKEN/", html)


@pytest.mark.parametrize(("viewer", "payload"), CASES)
def test_viewer_bodies_are_the_partials_markup(viewer, payload):
    r = rendition(viewer, payload, title=HOSTILE)
    partial = get_template(f"runs/viewers/{viewer}.html").template
    expected = partial.render(Context({"r": r, "artifact": ARTIFACT}, use_l10n=False))
    assert _same_token(_viewer_html(r, ARTIFACT, _Urls())) == _same_token(expected)


def test_other_viewers_still_render_through_their_partial():
    r = rendition("metrics", {"metrics": [{"name": "loss <x>", "display": "0.25"}]})
    html = _viewer_html(r, ARTIFACT, _Urls())
    assert '<tr><th scope="row">loss &lt;x&gt;</th><td>0.25</td></tr>' in html


def cell(r):
    return Cell(run_id=ARTIFACT.run_id, artifact=ARTIFACT, rendition=r, base_key="b/k")


@pytest.mark.parametrize(
    ("r", "shown"),
    [
        (None, '<p class="rendition-wait">Waiting for the preview…</p>'),
        (
            rendition("text", {}, status="failed", error=HOSTILE),
            "<strong>No preview:</strong> "
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;q&#x27;</p>",
        ),
        (rendition("text", {}, status="rendering"), '<p class="rendition-wait">Rendering the preview…</p>'),
        (rendition("text", {}, status="pending"), '<p class="rendition-wait">Preview queued…</p>'),
        (
            rendition("text", {"text": "x"}, status="rendering"),
            '<p class="rendition-wait">Still working on it…</p><section class="rendition status-rendering" '
            'data-viewer="text">',
        ),
    ],
)
def test_cell_states(r, shown):
    html = _cell_html(cell(r), _Urls())
    assert html.startswith('<td class="cell" data-run="5" data-artifact="7">\n')
    assert shown in html
    assert html.endswith(
        '<p class="cell-name"><a href="/runs/5/artifacts/7/">step/file &lt;1&gt;.txt</a></p></td>\n'
    )


def test_rows_escape_keys_and_mark_absent_runs():
    run = SimpleNamespace(pk=5, name="<run>")
    other = SimpleNamespace(pk=6, name="b")
    c = Comparison(runs=[run, other], rows=[])
    row = Row(key='k"<', viewer="text", cells=[cell(rendition("text", {"text": "x"})), None])
    html = rows_html(c, [row])
    assert '<tr data-key="k&quot;&lt;"><th scope="row" class="row-head">k&quot;&lt;</th>' in html
    assert '<a href="/runs/5/">&lt;run&gt;</a> <small>#5</small></th>' in html
    assert '<td class="absent">—</td>\n</tr>' in html
    assert rows_html(c, []) == '<p class="empty">— none of the compared runs has one.</p>\n'

"""A Vega-Lite output as a self-contained HTML document for the web-app origin (docs/recipes.md).

The web-app origin loads nothing from the network (WEBAPP_CSP), and no Vega
library is vendored, so the document carries a small inline renderer for the
subset of Vega-Lite the recipes use: ``data.values`` with mark ``bar``,
``line`` or ``point``, ``x``/``y`` fields (quantitative or nominal) and an
optional ``x2`` (binned bars). The full spec is shown beside the chart, so
nothing is hidden when a spec uses more than the subset.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

_SCRIPT = Path(__file__).with_name("vega_lite.js").read_text(encoding="utf-8")


def vega_lite_document(spec: dict, title: str) -> bytes:
    """HTML with the spec as a non-executed JSON block and the inline renderer."""
    spec_json = json.dumps(spec, allow_nan=False).replace("</", "<\\/")
    pretty = escape(json.dumps(spec, indent=1, allow_nan=False)[:20000])
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        + escape(title)
        + "</title><style>body{font:13px sans-serif;margin:8px}pre{max-height:12em;overflow:auto;"
        "background:#f6f6f6;padding:4px}</style></head><body>"
        + (f"<h3>{escape(str(spec.get('title')))}</h3>" if isinstance(spec.get("title"), str) else "")
        + "<div id='chart'></div><details><summary>Vega-Lite spec</summary><pre>"
        + pretty
        + "</pre></details><script type='application/json' id='spec'>"
        + spec_json
        + "</script><script>"
        + _SCRIPT
        + "</script></body></html>"
    ).encode("utf-8")

"""A Vega-Lite output as an HTML document for the web-app origin (docs/recipes.md).

The document loads the vendored vega, vega-lite and vega-embed builds from the
web-app origin itself (``/vendor/vega/…``, runs/webapp.py; WEBAPP_CSP allows
``script-src 'self'`` and no network connection) and draws the spec with
``vegaEmbed`` as SVG. The spec is a non-executed JSON block, also shown in a
``<details>`` block; an invalid spec shows the error text in place of the chart.
"""

from __future__ import annotations

import json
from html import escape

# Versions of runs/static/runs/vendor/vega/ (runs/static/VENDORED.md); the query string only
# makes a browser's long-cached copy stale when the vendored files change.
VEGA_VERSIONS = "vega-5.33.1_vega-lite-5.23.0_vega-embed-6.29.0"
SCRIPTS = tuple(
    f"/vendor/vega/{name}?v={VEGA_VERSIONS}"
    for name in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
)

_EMBED = (
    "(function(){var root=document.getElementById('chart');"
    "function fail(e){root.className='error';root.textContent='This Vega-Lite spec could not be drawn: '"
    "+((e&&e.message)||e)+'. See the spec below.';}"
    "try{var spec=JSON.parse(document.getElementById('spec').textContent);"
    "if(typeof vegaEmbed!=='function'){throw new Error('the Vega libraries did not load');}"
    "vegaEmbed('#chart',spec,{renderer:'svg',actions:false}).catch(fail);}catch(e){fail(e);}})();"
)


def vega_lite_document(spec: dict, title: str) -> bytes:
    """HTML with the spec as a non-executed JSON block, the vendored Vega scripts and a vegaEmbed call."""
    spec_json = json.dumps(spec, allow_nan=False).replace("</", "<\\/")
    pretty = escape(json.dumps(spec, indent=1, allow_nan=False)[:20000])
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        + escape(title)
        + "</title><style>body{font:13px sans-serif;margin:8px}pre{max-height:12em;overflow:auto;"
        "background:#f6f6f6;padding:4px}.error{color:#a00;padding:4px 0}</style></head><body>"
        + "<div id='chart'></div><details><summary>Vega-Lite spec</summary><pre>"
        + pretty
        + "</pre></details><script type='application/json' id='spec'>"
        + spec_json
        + "</script>"
        + "".join(f"<script src='{src}'></script>" for src in SCRIPTS)
        + "<script>"
        + _EMBED
        + "</script></body></html>"
    ).encode("utf-8")

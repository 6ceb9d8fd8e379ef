"""The interactive parts of report.html: embedded libraries, per-stack table and plots, the page script.

Libraries, all embedded in the one file (the page makes no network request and works offline):
- plotly.js, from the `plotly` Python package (plotly.offline.get_plotlyjs(): the full minified bundle,
  about 4.8 MB; it is what plotly's own offline HTML export embeds, and pymatgen already needs plotly);
- DataTables (SpryMedia; sorting, searching, paging, deferred rendering of 10^5 client-side rows), from
  the offline bundle the `itables` PyPI package ships (itables/html/dt_bundle.js + .css, the bundle
  itables itself inlines for offline notebooks). Chosen over plotly's own table (no sorting or filtering)
  and over Tabulator (an npm package: it would have to be vendored into this repository by hand) because
  a PyPI package installs it through pyproject.toml like every other dependency, and DataTables is a
  long-maintained, widely used table library. The bundle is an ES module: the page imports it from a
  Blob URL made of its base64 text, as itables does.
"""

from __future__ import annotations

import base64
import html
import json
from functools import lru_cache
from importlib import resources

APP_SCRIPT = "report_app.js"
CSS = """
.stack-ui{margin:1em 0}.criteria label{margin-right:1em;white-space:nowrap}
.table-wrap{overflow-x:auto}table.dataTable{font-size:85%}table.dataTable td{white-space:nowrap}
table.dataTable tbody tr{cursor:pointer}
.badge{display:inline-block;padding:0 5px;border-radius:8px;font-size:85%;margin-left:3px}
.badge-warn{background:#fdd49e;color:#7f2704;border:1px solid #e6550d}
.notice{background:#fff7e6;border-left:4px solid #e6550d;padding:.5em 1em;margin:.5em 0}
.details{background:#f4f8fb;border:1px solid #c6dbef;padding:.5em 1em;margin:.5em 0;min-height:2em}
.details dl{display:grid;grid-template-columns:max-content auto;gap:2px 1em;margin:0}.details dt{font-weight:bold}
.plot{width:100%;min-height:200px}details.papers{margin:1em 0}
"""


@lru_cache(maxsize=1)
def _libraries() -> tuple[str, str, str]:
    """(DataTables css, DataTables module as base64, plotly.js)."""
    from plotly.offline import get_plotlyjs

    bundle = resources.files("itables") / "html"
    css = (bundle / "dt_bundle.css").read_text(encoding="utf-8")
    module = base64.b64encode((bundle / "dt_bundle.js").read_bytes()).decode("ascii")
    return css, module, get_plotlyjs()


def _inline(text: str, tag: str) -> str:
    """Text safe inside a <script>/<style> element: its end tag cannot occur in it."""
    if f"</{tag}" in text.lower():
        raise ValueError(f"embedded text contains </{tag}")
    return text


def assets_html() -> str:
    """The libraries, for the page's <head>."""
    css, module, plotly_js = _libraries()
    return (f"<style>{_inline(css, 'style')}</style><style>{CSS}</style>"
            f"<script>{_inline(plotly_js, 'script')}</script>"
            f"<script type='application/octet-stream' id='dt-src'>{module}</script>")


def app_script() -> str:
    """The page's own script (package data beside this module), run after the stack sections."""
    code = (resources.files("screening.interfaces") / APP_SCRIPT).read_text(encoding="utf-8")
    return f"<script type='module'>{_inline(code, 'script')}</script>"


def json_script(element_id: str, value) -> str:
    """A JSON data island; '</' is escaped so no value can end the script element."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return f"<script type='application/json' id='{html.escape(element_id)}'>{text}</script>"


def stack_section(index: int, payload: dict, figures: dict, limits: dict[str, str]) -> str:
    """The interactive block of one stack: notice of uncertain top rows, criteria toggles, the table
    of every candidate, the details panel and the plot containers (drawn when scrolled into view)."""
    parts = [f"<div class='stack-ui' data-stack='{index}'>"]
    flagged = payload["uncertain_top"]
    if flagged:
        names = ", ".join(f"{html.escape(f['candidate'])} (rank {f['rank']}, P = {f['p_pass_all']:.2f})"
                          for f in flagged)
        parts.append(f"<p class='notice' id='uncertain-{index}'><span class='badge badge-warn'>uncertain</span> "
                     f"{len(flagged)} of the top 10 pass every criterion in fewer than half of the Monte "
                     f"Carlo draws of the energy errors: {names}. Their pass/fail is within the DFT errors "
                     "(P(pass all) column); check them before acting on their rank.</p>")
    boxes = "".join(f"<label><input type='checkbox' data-bit='{i}' value='{html.escape(name)}'> "
                    f"{html.escape(name)} ({html.escape(limits.get(name, 'on'))})</label>"
                    for i, name in enumerate(payload["criteria"]))
    parts.append(f"<h3>All {payload['n_rows']} candidates</h3>"
                 "<p>Click a column header to sort, type in Search to filter (formula, element, anion "
                 "class), tick criteria to show only the rows that pass them, click a row for details.</p>"
                 f"<div class='criteria' id='criteria-{index}'>Show only rows passing: {boxes} "
                 f"<button type='button' data-all='1'>all</button> <button type='button' data-all='0'>none"
                 "</button></div>"
                 f"<div class='table-wrap'><table id='table-{index}' class='display compact stripe'></table></div>"
                 f"<div class='details' id='details-{index}'>Click a row or a point for its details.</div>")
    for kind in ("scatter", "windows", "reaction"):
        if figures.get(kind) is not None:
            parts.append(f"<div class='plot' id='{kind}-{index}' data-figure='{kind}'></div>")
    parts.append(json_script(f"stack-data-{index}", {"table": payload, "figures": figures}))
    parts.append("</div>")
    return "".join(parts)

"""One self-contained HTML page: styles, plotly.js (from the installed ``plotly`` package) and the
data inlined, nothing loaded from the network.

Everything that comes from a log or a scenario is data, never markup:

* the page's data travels as one JSON document in ``<script type="application/json">``, with
  ``<``, ``>``, ``&`` and U+2028/U+2029 written as ``\\uXXXX`` escapes, so no ``</script>`` or
  ``<!--`` can end or change the element;
* the page's own script (``_APP_JS``, fixed text) builds tables and headings with ``textContent``
  only (no ``innerHTML``);
* strings that plotly draws (hover texts, trace names, axis titles, annotations) go through
  ``ptext``: plotly reads a small subset of HTML in them (``<br>``, ``<b>``, ``<a href>``), so
  they are HTML-escaped and plotly shows the characters themselves.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Any

HOVER_MAX = 400  # characters of a log line in a hover label (the tables show it whole)
CELL_MAX = 20_000  # characters of one table cell


def ptext(s: object, limit: int | None = None) -> str:
    """``s`` as text for plotly: HTML-escaped (plotly decodes the entities), cut at ``limit``."""
    t = str(s)
    if limit is not None and len(t) > limit:
        t = t[:limit] + f"… ({len(t) - limit:,} more characters)"
    return html.escape(t, quote=True)


def cell(value: object) -> Any:
    """A table cell: numbers and None as they are (NaN as None), anything else as text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    t = str(value)
    if len(t) > CELL_MAX:
        t = t[:CELL_MAX] + f"… ({len(t) - CELL_MAX:,} more characters)"
    return t


@dataclass
class Table:
    """A table the page draws with ``textContent`` (``rows``: lists of numbers, text or None)."""

    id: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "columns": self.columns,
            "rows": [[cell(v) for v in r] for r in self.rows],
            "note": self.note,
        }


@dataclass
class Figure:
    """A plotly figure as plain JSON (``data``: traces, ``layout``)."""

    id: str
    data: list[dict[str, Any]]
    layout: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "data": self.data, "layout": self.layout}


@dataclass
class Section:
    title: str
    notes: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    columns: int = 1  # figures side by side

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": self.columns,
            "notes": self.notes,
            "figures": [f.to_json() for f in self.figures],
            "tables": [t.to_json() for t in self.tables],
        }


@dataclass
class Page:
    title: str
    kind: str  # run | compare | sweep | triage
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    main: str | None = None  # the id of the main figure (``--png``)

    def to_json(self, only_main: bool = False) -> dict[str, Any]:
        sections = [s.to_json() for s in self.sections]
        if only_main:
            sections = [
                {
                    "title": "",
                    "notes": [],
                    "figures": [f for f in s["figures"] if f["id"] == self.main],
                    "tables": [],
                }
                for s in sections
            ]
            sections = [s for s in sections if s["figures"]]
        return {"title": self.title, "kind": self.kind, "subtitle": self.subtitle, "sections": sections}


def _json_for_script(doc: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>``, ``&``, U+2028/9."""
    text = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    js: str = get_plotlyjs()
    # a literal "</script" inside the library would end the element early
    return js.replace("</script", "<\\/script")


def render(page: Page, only_main: bool = False) -> str:
    """The page as one HTML document."""
    data = _json_for_script(page.to_json(only_main))
    title = html.escape(page.title)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; "
        "font-src data:; connect-src 'none'\">\n"
        f'<meta name="generator" content="lpmsim">\n<title>{title}</title>\n'
        f"<style>{_CSS}</style>\n"
        f"<script>{plotly_js()}</script>\n"
        '</head>\n<body>\n<main id="lpmsim-report"></main>\n'
        f'<script type="application/json" id="lpmsim-data">{data}</script>\n'
        f"<script>{_APP_JS}</script>\n</body>\n</html>\n"
    )


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; background: #fafafa; }
main { max-width: 1500px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 1.5em; margin: 8px 0 2px; }
h2 { font-size: 1.2em; margin: 28px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 3px; }
.subtitle { color: #555; margin: 0 0 12px; }
.note { color: #444; margin: 4px 0; max-width: 1100px; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); column-gap: 12px; }
.chart { background: #fff; border: 1px solid #e3e3e3; margin: 8px 0 16px; }
.tablewrap { max-height: 480px; overflow: auto; border: 1px solid #e3e3e3; background: #fff; margin: 6px 0 16px; }
table { border-collapse: collapse; font-size: 12.5px; width: 100%; }
th { position: sticky; top: 0; background: #f0f0f0; text-align: left; padding: 3px 8px; border-bottom: 1px solid #ccc; }
td { padding: 2px 8px; border-bottom: 1px solid #f0f0f0; vertical-align: top; }
td.text { font-family: ui-monospace, "DejaVu Sans Mono", monospace; white-space: pre-wrap; overflow-wrap: anywhere; min-width: 6ch; max-width: 80ch; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
h3 { font-size: 1em; margin: 12px 0 4px; }
"""

_APP_JS = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("lpmsim-data").textContent);
  var root = document.getElementById("lpmsim-report");
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function fmt(v) {
    if (v === null || v === undefined) { return ""; }
    if (typeof v === "number") {
      if (Number.isInteger(v)) { return String(v); }
      var a = Math.abs(v);
      return (a !== 0 && (a < 1e-3 || a >= 1e6)) ? v.toExponential(3) : String(Number(v.toPrecision(6)));
    }
    return String(v);
  }
  document.title = D.title;
  root.appendChild(el("h1", null, D.title));
  if (D.subtitle) { root.appendChild(el("p", "subtitle", D.subtitle)); }
  var charts = [];
  D.sections.forEach(function (s) {
    if (s.title) { root.appendChild(el("h2", null, s.title)); }
    s.notes.forEach(function (n) { root.appendChild(el("p", "note", n)); });
    var figs = el("div", s.columns > 1 ? "figs grid" : "figs");
    root.appendChild(figs);
    s.figures.forEach(function (f) {
      var div = el("div", "chart");
      div.id = f.id;
      figs.appendChild(div);
      charts.push([div, f]);
    });
    s.tables.forEach(function (t) {
      if (t.title) { root.appendChild(el("h3", null, t.title)); }
      if (t.note) { root.appendChild(el("p", "note", t.note)); }
      var wrap = el("div", "tablewrap");
      var table = el("table");
      table.id = t.id;
      var head = el("tr");
      t.columns.forEach(function (c) { head.appendChild(el("th", null, c)); });
      var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
      var body = el("tbody");
      t.rows.forEach(function (r) {
        var tr = el("tr");
        r.forEach(function (v) { tr.appendChild(el("td", typeof v === "number" ? "num" : "text", fmt(v))); });
        body.appendChild(tr);
      });
      table.appendChild(body);
      wrap.appendChild(table);
      root.appendChild(wrap);
    });
  });
  var config = { displaylogo: false, responsive: true, scrollZoom: false };
  var pending = charts.length;
  if (pending === 0) { document.body.setAttribute("data-rendered", "1"); }
  charts.forEach(function (c) {
    Plotly.newPlot(c[0], c[1].data, c[1].layout, config).then(function () {
      pending -= 1;
      if (pending === 0) { document.body.setAttribute("data-rendered", "1"); }
    });
  });
})();
"""

"""The HTML page without a browser: the data island cannot end its element, strings for plotly are
escaped, and ``lpmsim report`` refuses what it cannot read with one line and exit code 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from lpmsim.cli.main import app
from lpmsim.report.html import Figure, Page, Section, Table, _json_for_script, ptext, render

EVIL = [
    "<script>window.__pwned=1</script>",
    "</script><script>alert(1)</script>",
    "<!-- <script>",
    "\"quoted' & <b>bold</b>",
    "javascript:alert(1)",
    "\u2028\u2029 line separators",
    "x" * 10_000,
]


def test_json_island_cannot_end_its_element() -> None:
    doc = {"strings": EVIL, "nested": {"</script>": EVIL}}
    text = _json_for_script(doc)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == doc


def test_ptext_escapes_for_plotly() -> None:
    assert ptext("<b>x</b> & \"q\" 'a'") == "&lt;b&gt;x&lt;/b&gt; &amp; &quot;q&quot; &#x27;a&#x27;"
    cut = ptext("y" * 1000, 10)
    assert cut.startswith("y" * 10) and "990 more characters" in cut


def test_rendered_page_has_only_its_own_scripts() -> None:
    page = Page(
        title=EVIL[0],
        kind="run",
        subtitle=EVIL[1],
        sections=[
            Section(
                EVIL[2],
                notes=EVIL,
                figures=[
                    Figure("f", [{"type": "scatter", "x": [1], "y": [1], "text": [ptext(EVIL[0])]}], {})
                ],
                tables=[Table("t", EVIL[3], ["a"], [[e] for e in EVIL])],
            )
        ],
    )
    html = render(page)
    data = re.search(r'<script type="application/json" id="lpmsim-data">(.*?)</script>', html, re.S)
    assert data is not None
    assert "<" not in data.group(1)
    # the title element: escaped text
    assert "<title>&lt;script&gt;window.__pwned=1&lt;/script&gt;</title>" in html
    # after plotly.js: exactly the data island and the page's own script
    tail = html[html.index("<main") :]
    assert tail.count("<script") == 2 and tail.count("</script>") == 2
    assert "https://" not in tail and "http://" not in tail
    # no external resource anywhere: no src= or href= to a URL outside the page
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)


def _invoke(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def test_report_refuses_bad_directories(tmp_path: Path) -> None:
    code, out = _invoke("report", str(tmp_path / "missing"))
    assert code == 2 and "no such directory" in out and "Traceback" not in out
    code, out = _invoke("report", str(tmp_path))
    assert code == 2 and "holds no summary.json" in out
    (tmp_path / "summary.json").write_text("{not json", encoding="utf-8")
    code, out = _invoke("report", str(tmp_path))
    assert code == 2 and "not valid JSON" in out
    (tmp_path / "summary.json").write_text("[1, 2]", encoding="utf-8")
    code, out = _invoke("report", str(tmp_path))
    assert code == 2 and "not a JSON object" in out
    (tmp_path / "summary.json").write_text('{"a": 1}', encoding="utf-8")
    code, out = _invoke("report", str(tmp_path))
    assert code == 2 and "not an lpmsim run summary" in out
    store = tmp_path / "store"
    store.mkdir()
    (store / "sweep.sqlite").write_bytes(b"")
    code, out = _invoke("report", str(store))
    assert code == 2 and "cannot read the result store" in out


def test_report_of_an_untraced_run(tmp_path: Path) -> None:
    """Without --trace the page still has the reports, phases and log (and says how to get more)."""
    code, out = _invoke("run", "--preset", "default", "-q", "--out", str(tmp_path))
    assert code == 0, out
    code, out = _invoke("report", str(tmp_path), "--html", str(tmp_path / "r.html"))
    assert code == 0, out
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "This run was not traced" in html
    assert "detector reports (4)" in html  # the default preset's four reports


def test_triage_png_needs_html(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("[    1.000000] hello\n", encoding="utf-8")
    code, out = _invoke("triage", str(log), "--png", str(tmp_path / "x.png"))
    assert code == 2 and "--png needs --html" in out


def test_png_without_a_browser_keeps_the_page(tmp_path: Path) -> None:
    code, out = _invoke("run", "--preset", "default", "-q", "--out", str(tmp_path))
    assert code == 0, out
    res = CliRunner().invoke(
        app,
        ["report", str(tmp_path), "--png", str(tmp_path / "x.png")],
        env={"LPMSIM_CHROMIUM": str(tmp_path / "no-such-browser")},
    )
    assert res.exit_code == 1
    assert "--png: no Chromium found" in res.output and "Traceback" not in res.output
    assert (tmp_path / "report.html").stat().st_size > 1_000_000  # the page was written first
    assert not (tmp_path / "x.png").exists()


def test_triage_html_from_stdin_and_several_logs(tmp_path: Path) -> None:
    log = "[ 6366.000000] mobility: calling ibm,suspend-me on CPU 63\n[ 6380.000000] watchdog: CPU 0 Hard LOCKUP\n"
    res = CliRunner().invoke(app, ["triage", "-", "--html", str(tmp_path / "in.html")], input=log)
    assert res.exit_code == 0, res.output
    html = (tmp_path / "in.html").read_text(encoding="utf-8")
    assert "[ 6380.000000] watchdog: CPU 0 Hard LOCKUP" in html  # the line, read again from stdin's copy
    other = tmp_path / "b.log"
    other.write_text(log, encoding="utf-8")
    res = CliRunner().invoke(
        app, ["triage", "-", str(other), "--html", str(tmp_path / "two.html")], input=log
    )
    assert res.exit_code == 0, res.output
    html = (tmp_path / "two.html").read_text(encoding="utf-8")
    assert '"id":"triage_0"' in html and '"id":"triage_1"' in html

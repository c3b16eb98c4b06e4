"""Each kind of report in a real browser (headless Chromium from the distribution): loaded from a
file URL with every request recorded and refused, no console error, the expected markers, log text
shown as text and never run.  A failing test keeps a full-page screenshot in tests/artefacts/."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kernel.cases import CASES
from lpmsim.api.batch import compare, sweep
from lpmsim.api.run import simulate
from lpmsim.cli.main import app
from lpmsim.config.loader import build_scenario
from lpmsim.outputs.summary import write_kernel_log, write_summary

from .browser import Loaded, assert_clean, load, needs_chromium

pytestmark = needs_chromium

CASE = next(c for c in CASES if c.id == "lpm_rtas_50s_after_resume")
EVIL_LOG = Path(__file__).parent / "data" / "evil.log"
LARGE_HTML_BOUND = 8_000_000  # bytes: plotly.js (4.8 MB) + the data of a 1,920-vCPU run
LARGE_OPEN_S = 10.0  # wall seconds to load and draw it (measured: 2.5 s; docs/report.md)


def _cli(*args: str) -> None:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output


def _traced_case(out: Path) -> dict[str, Any]:
    res = simulate(build_scenario(CASE.data()), trace=True)
    write_summary(res.summary, out)
    write_kernel_log(list(res.log), out)
    assert res.trace is not None
    res.trace.write(out)
    return res.summary


def _hover_text(loaded: Loaded, fig_id: str, meta: str, index: int) -> str:
    """Hover marker ``index`` of the traces with ``meta`` and return the hover label's text."""
    box = loaded.evaluate(
        """([id, meta, k]) => {
            const gd = document.getElementById(id);
            const pts = [];
            gd.querySelectorAll('.scatterlayer .trace').forEach((tr) => {
                const t = tr.__data__ && tr.__data__[0] && tr.__data__[0].trace;
                if (t && t.meta === meta) { tr.querySelectorAll('path.point').forEach((p) => pts.push(p)); }
            });
            const r = pts[k].getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2];
        }""",
        [fig_id, meta, index],
    )
    loaded.page.mouse.move(box[0], box[1])
    loaded.page.wait_for_selector(f"#{fig_id} .hoverlayer .hovertext", timeout=5000)
    return str(loaded.evaluate(f"document.querySelector('#{fig_id} .hoverlayer').textContent"))


def test_run_report_of_the_scripted_case(tmp_path: Path) -> None:
    """tests/kernel/cases.py's lpm_rtas_50s_after_resume: four reports, computed by hand."""
    summary = _traced_case(tmp_path)
    assert len(summary["events"]) == len(CASE.expect) == 4
    _cli("report", str(tmp_path), "-q")
    with load(tmp_path / "report.html", "run_scripted_case") as page:
        assert_clean(page)
        assert page.marker_count("timeline", "reports") == 4
        names = page.evaluate("document.getElementById('timeline').data.map((t) => t.name)")
        assert "RTAS call (rtas_lock held)" in names and "stalled in the hypervisor" in names
        rows = page.evaluate("document.querySelectorAll('#reports tbody tr').length")
        assert rows == 4
        text = _hover_text(page, "timeline", "reports", 1)
        assert "watchdog: CPU 1 detected hard LOCKUP on other CPUs 0" in text


def test_run_report_shows_log_text_as_text(tmp_path: Path) -> None:
    """Strings from the scenario and the log end up as text: nothing in them runs."""
    _traced_case(tmp_path)
    evil = EVIL_LOG.read_text(encoding="utf-8").splitlines()
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    summary["scenario"]["name"] = evil[0]
    for k, e in enumerate(summary["events"]):
        e["line"] = evil[k % len(evil)]
    (tmp_path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (tmp_path / "dmesg.log").write_text("\n".join(evil) + "\n", encoding="utf-8")
    _cli("report", str(tmp_path), "-q")
    with load(tmp_path / "report.html", "run_evil") as page:
        assert_clean(page)
        _assert_nothing_ran(page)
        assert page.evaluate("document.querySelector('h1').textContent") == f"lpmsim run: {evil[0]}, seed 1"
        cells = page.evaluate(
            "[...document.querySelectorAll('#log tbody tr td:nth-child(2)')].map((c) => c.textContent)"
        )
        assert cells == evil
        assert page.marker_count("timeline", "reports") == 4
        text = _hover_text(page, "timeline", "reports", 0)
        assert evil[0][:60] in text


def _assert_nothing_ran(page: Loaded) -> None:
    assert page.evaluate("window.__pwned === undefined")
    assert page.evaluate("document.querySelectorAll('script').length") == 3  # plotly, data, the page's
    assert page.evaluate("document.querySelectorAll('[onerror], img, iframe, object, embed').length") == 0
    assert (
        page.evaluate(
            "[...document.querySelectorAll('a[href]')].filter((a) => /^\\s*javascript:/i.test(a.getAttribute('href'))).length"
        )
        == 0
    )


def test_triage_report_of_a_hostile_log(tmp_path: Path) -> None:
    """A log whose lines hold <script>, </script>, quotes, javascript: and 10,000-character lines."""
    html = tmp_path / "triage.html"
    _cli("triage", str(EVIL_LOG), "--html", str(html))
    lines = EVIL_LOG.read_text(encoding="utf-8").splitlines()
    assert max(len(ln) for ln in lines) > 10_000
    with load(html, "triage_evil") as page:
        assert_clean(page)
        _assert_nothing_ran(page)
        assert page.marker_count("triage_0", "events") == 7
        shown = page.evaluate(
            "[...document.querySelectorAll('#events_0 tbody tr')].map((r) => r.children[7].textContent)"
        )
        assert shown == [lines[i] for i in (0, 2, 3, 4, 5, 6, 7)]
        text = _hover_text(page, "triage_0", "events", 0)
        assert "<script>window.__pwned=1</script>" in text


def test_triage_report_of_a_simulated_log(tmp_path: Path) -> None:
    """A log lpmsim wrote (the scripted case's dmesg.log): phases as bands, events by CPU."""
    _traced_case(tmp_path)
    html = tmp_path / "t.html"
    _cli("triage", str(tmp_path / "dmesg.log"), "--html", str(html))
    with load(html, "triage_sim") as page:
        assert_clean(page)
        assert page.marker_count("triage_0", "events") >= 3
        shapes = page.evaluate("document.getElementById('triage_0').layout.shapes.length")
        assert shapes >= 2  # suspend, transfer


@pytest.mark.parametrize("files", [False, True], ids=["store-only", "compare.json"])
def test_compare_report(tmp_path: Path, files: bool) -> None:
    """From the result store alone (what lpmsim.compare(out_dir=) leaves) and from the CLI's files."""
    cmp = compare("default", ["none=none", "f200=nmi-factor:200"], runs=2, jobs=1, out_dir=tmp_path)
    if files:
        cmp.result.write(tmp_path)
    _cli("report", str(tmp_path), "-q")
    with load(tmp_path / "report.html", f"compare_{files}") as page:
        assert_clean(page)
        ys = page.evaluate("document.getElementById('p_outcome').data.map((t) => t.y)")
        assert ys[0] == [cmp.aggregates[v]["p_crash"]["p"] for v in ("none", "f200")]
        assert ys[1] == [cmp.aggregates[v]["p_panic"]["p"] for v in ("none", "f200")]
        bars = page.evaluate("document.querySelectorAll('#p_outcome .errorbar').length")
        assert bars == 4  # two variants x (crash, panic)
        assert page.evaluate("document.querySelectorAll('#variants tbody tr').length") == 2
        boxes = page.evaluate("document.getElementById('fault_latency').data.map((t) => t.y.length)")
        assert boxes == [2, 2]  # one point per run


def test_sweep_report(tmp_path: Path) -> None:
    sweep(
        "small",
        {"partition.vcpus": [2, 4]},
        ["none=none", "f200=nmi-factor:200"],
        runs=1,
        jobs=1,
        set={"partition.memory_gib": 0.125, "sim.max_time_s": 20},
        out_dir=tmp_path,
    )
    _cli("report", str(tmp_path), "-q")
    with load(tmp_path / "report.html", "sweep") as page:
        assert_clean(page)
        data = page.evaluate("document.getElementById('p_outcome').data.map((t) => [t.name || null, t.x])")
        named = [d for d in data if d[0]]
        assert [d[0] for d in named] == ["none", "f200"]
        assert all(d[1] == [2, 4] for d in named)


def test_large_partition_report_opens_fast(tmp_path: Path) -> None:
    """A 1,920-vCPU run (the large preset, less memory to keep the test short): the page stays
    under LARGE_HTML_BOUND and opens and draws within LARGE_OPEN_S."""
    _cli(
        "run",
        "--preset",
        "large",
        "--set",
        "partition.memory_gib=512",
        "--set",
        "kernel.version=pre-v6.0",
        "--trace",
        "-q",
        "--out",
        str(tmp_path),
    )
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["scenario"]["partition"]["vcpus"] == 1920
    _cli("report", str(tmp_path), "-q", "--png", str(tmp_path / "main.png"))
    size = (tmp_path / "report.html").stat().st_size
    assert size < LARGE_HTML_BOUND
    assert (tmp_path / "main.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    t0 = time.monotonic()
    with load(tmp_path / "report.html", "large") as page:
        assert_clean(page)
        assert page.seconds < LARGE_OPEN_S, f"{page.seconds:.1f} s to open"
        assert page.marker_count("timeline", "reports") == len(summary["events"])
        rows = page.evaluate("document.getElementById('timeline').layout.yaxis.ticktext.length")
        assert rows <= 48
    assert time.monotonic() - t0 < 60


@pytest.mark.slow
def test_worst_case_trace_stays_within_the_bound(tmp_path: Path) -> None:
    """A trace at its bound (200,000 intervals) on 64 vCPUs, every one a row: the page draws the
    20,000 longest and stays under LARGE_HTML_BOUND (measured: 6.6 MB, 4.7 s; docs/report.md)."""
    import pyarrow as pa

    from lpmsim.outputs.trace import RunTrace

    _cli("run", "--preset", "default", "--trace", "-q", "--out", str(tmp_path))
    tr = RunTrace.read(tmp_path)
    n = 200_000
    start = [6366.0 + (i // 64) * 0.005 + (i % 7) * 0.001 for i in range(n)]
    kinds = ["stall", "ctx", "spin", "steal"]
    states = pa.table(
        {
            "cpu": pa.array([i % 64 for i in range(n)], pa.int32()),
            "kind": pa.array([kinds[i % 4] for i in range(n)]).dictionary_encode(),
            "label": pa.array(
                [("stalled", "irqs_soft_off", "rtas_lock", "30%")[i % 4] for i in range(n)]
            ).dictionary_encode(),
            "start_s": pa.array(start, pa.float64()),
            "end_s": pa.array([s + 0.002 + (i % 13) * 0.0003 for i, s in enumerate(start)], pa.float64()),
        }
    )
    RunTrace(tr.meta, states, tr.cpus, tr.series, tr.reports, tr.log, tr.phases).write(tmp_path)
    _cli("report", str(tmp_path), "-q")
    size = (tmp_path / "report.html").stat().st_size
    assert size < LARGE_HTML_BOUND, size
    with load(tmp_path / "report.html", "worst_case") as page:
        assert_clean(page)
        assert page.seconds < 2 * LARGE_OPEN_S, f"{page.seconds:.1f} s to open"
        drawn = page.evaluate(
            "document.getElementById('timeline').data.filter((t) => t.customdata)"
            ".reduce((n, t) => n + t.x.length / 3, 0)"
        )
        assert drawn == 20_000

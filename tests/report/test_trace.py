"""``lpmsim run --trace``: what the trace records, that it changes nothing, and its bounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kernel.cases import CASES
from lpmsim.api.run import run, simulate
from lpmsim.api.source import load
from lpmsim.cli.main import app
from lpmsim.config.loader import build_scenario
from lpmsim.outputs.trace import KINDS, RunTrace, TraceRecorder, has_trace
from lpmsim.runner import run_scenario

CASE = next(c for c in CASES if c.id == "lpm_rtas_50s_after_resume")


def _no_wall(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "wall_s"}


def test_scripted_case_states_and_reports() -> None:
    """The hand-computed case of tests/kernel/cases.py: a 50 s RTAS call on CPU 0 from the resume
    (1.290015 s) to 51.290015 s; every CPU stalled from ibm,suspend-me (1.04 s: ssleep(1) rounded to
    the timer wheel) until it is prodded (CPU 3 the waker at 1.29, then CPUs 0, 1, 2 one H_PROD of 5 us apart); its four reports."""
    out = simulate(build_scenario(CASE.data()), trace=True)
    tr = out.trace
    assert tr is not None
    st = tr.states.to_pylist()
    rtas = [r for r in st if r["kind"] == "rtas"]
    assert [(r["cpu"], r["start_s"], r["end_s"]) for r in rtas] == [
        (0, pytest.approx(1.290015), pytest.approx(51.290015))
    ]
    stalls = sorted((r["cpu"], r["start_s"], r["end_s"]) for r in st if r["kind"] == "stall")
    assert stalls == [
        (0, 1.04, pytest.approx(1.290005)),
        (1, 1.04, pytest.approx(1.290010)),
        (2, 1.04, pytest.approx(1.290015)),
        (3, 1.04, pytest.approx(1.29)),
    ]
    # the RTAS call runs hard-disabled
    hard0 = [r for r in st if r["cpu"] == 0 and r["label"] == "irqs_hard_off"]
    assert any(r["start_s"] <= 1.290015 + 1e-9 and r["end_s"] >= 51.290015 - 1e-9 for r in hard0)
    reports = tr.reports.to_pylist()
    assert [(r["time_s"], r["detector"], r["kind"], r["cpus"], r["by"], r["line"]) for r in reports] == [
        (pytest.approx(e[0]), e[1], e[2], e[3], e[4], e[5]) for e in CASE.expect
    ]
    phases = {(r["source"], r["name"]): r["time_s"] for r in tr.phases.to_pylist()}
    assert phases[("mobility", "suspend")] == 1.04
    assert phases[("vasi", "resumed")] == pytest.approx(1.29)
    assert [r["text"] for r in tr.log.to_pylist()] == [ln.split("] ", 1)[1] for ln in out.log]
    cpus = tr.cpus.to_pydict()
    assert cpus["rtas_count"] == [1, 0, 0, 0]
    assert cpus["rtas_max_s"][0] == pytest.approx(50.0)
    series = tr.series.to_pydict()
    assert series["time_s"] == sorted(series["time_s"])
    assert tr.meta["end_s"] >= 51.290015


@pytest.mark.parametrize("preset", ["default", "small"])
def test_trace_changes_nothing(preset: str) -> None:
    """A traced run's summary and log are the untraced run's (wall_s apart)."""
    a, b = run(preset), run(preset, trace=True)
    assert a.trace is None and b.trace is not None
    assert _no_wall(a.summary) == _no_wall(b.summary)
    assert a.log == b.log
    # the series agree with the summary: every demand fault counted once, latencies recorded
    ser = b.trace.series.to_pydict()
    t = [0.0, *ser["time_s"]]
    faults = sum(r * (t[i + 1] - t[i]) for i, r in enumerate(ser["demand_faults_per_s"]) if r == r)
    assert faults == pytest.approx(b.summary["migration"]["demand_faults"], rel=1e-9)
    p99 = [x for x in ser["fault_latency_p99_s"] if x == x]
    assert p99 and max(p99) <= b.summary["migration"]["fault_latency_s"]["max"] * 1.13


def test_scripted_case_unchanged_by_trace() -> None:
    sc = build_scenario(CASE.data())
    assert _no_wall(simulate(sc).summary) == _no_wall(simulate(sc, trace=True).summary)


def test_bounds_keep_the_longest_intervals() -> None:
    """With a small bound the trace keeps exactly the longest intervals and counts the rest."""
    sc = load("small", {"partition.memory_gib": 1})
    full, small = (
        TraceRecorder(sc.partition.vcpus),
        TraceRecorder(sc.partition.vcpus, max_intervals=50, points=20),
    )
    sa = run_scenario(sc, tracer=full)
    sb = run_scenario(sc, tracer=small)
    ta, tb = full.build(sa), small.build(sb)
    assert ta.states.num_rows > 1000 and tb.states.num_rows == 50
    durs = sorted((r["end_s"] - r["start_s"] for r in ta.states.to_pylist()), reverse=True)
    kept = sorted((r["end_s"] - r["start_s"] for r in tb.states.to_pylist()), reverse=True)
    assert kept == pytest.approx(durs[:50])
    assert tb.meta["dropped_intervals"] == ta.states.num_rows - 50
    assert ta.cpus.to_pydict() == tb.cpus.to_pydict()  # per-CPU totals count every interval
    # the series: between `points` and 2*points samples before the resume and after it (+ the ends)
    assert tb.series.num_rows <= 4 * 20 + 2
    assert ta.series.num_rows <= 4 * 600 + 2
    for kind in KINDS:
        assert sum(ta.cpus.column(f"{kind}_count").to_pylist()) >= sum(
            r["kind"] == kind for r in ta.states.to_pylist()
        )


def test_write_and_read(tmp_path: Path) -> None:
    tr = simulate(build_scenario(CASE.data()), trace=True).trace
    assert tr is not None
    d = tr.write(tmp_path)
    assert has_trace(tmp_path) and d == tmp_path / "trace"
    back = RunTrace.read(tmp_path)
    assert back.meta == json.loads(json.dumps(tr.meta))
    for name in ("states", "cpus", "series", "reports", "log", "phases"):
        assert repr(back.table(name).to_pylist()) == repr(tr.table(name).to_pylist())  # NaN too
    with pytest.raises(KeyError):
        tr.table("nothing")


def test_cli_trace(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["run", "--preset", "default", "--trace", "-q"])
    assert res.exit_code == 2 and "--trace needs --out" in res.output
    res = runner.invoke(app, ["run", "--preset", "default", "--trace", "-q", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert has_trace(tmp_path / "o")
    res = runner.invoke(app, ["run", "--preset", "default", "-q", "--out", str(tmp_path / "plain")])
    assert res.exit_code == 0 and not (tmp_path / "plain" / "trace").exists()


def test_static_partition_is_traced() -> None:
    """Not migrating (the scripted kernel cases' base): CPU 3 soft-masked from 100.5 s for 15 s
    (``self_then_unstuck`` with a 60 s RCU stall timeout, so that RCU's resched IPI at half of it
    does not hard-mask the CPU first), its two reports, no series of a transfer."""
    case = next(c for c in CASES if c.id == "self_then_unstuck")
    data = {**case.data()}
    data["kernel"] = {**data.get("kernel", {}), "rcu_cpu_stall_timeout": 60}
    out = simulate(build_scenario(data), trace=True)
    tr = out.trace
    assert tr is not None
    soft = [r for r in tr.states.to_pylist() if r["label"] == "irqs_soft_off"]
    assert [(r["cpu"], r["start_s"], r["end_s"]) for r in soft] == [(3, 100.5, pytest.approx(115.5))]
    assert tr.reports.num_rows == 2  # self-detected at 113.092912, unstuck at 115.5
    assert tr.phases.num_rows == 0
    missing = tr.series.column("missing_pages").to_pylist()
    assert all(m != m for m in missing)  # NaN: nothing migrates

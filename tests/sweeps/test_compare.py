"""``lpmsim compare`` and ``lpmsim.sweeps.compare``: refusals, rows, aggregates, determinism, failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lpmsim import runner as lpm_runner
from lpmsim.cli.main import app
from lpmsim.config.loader import resolve_scenario
from lpmsim.config.scenario import Scenario
from lpmsim.kernel.model import DETECTORS
from lpmsim.sweeps.compare import (
    COLUMN_NAMES,
    RunSpec,
    aggregate,
    compare,
    plan_runs,
    prepare,
    summary_row,
)
from lpmsim.sweeps.variants import VariantError

from .helpers import FAILING_SEED, fail_on_seed_2

cli = CliRunner()

# About 0.2 s a run: 8 vCPUs, 256 MiB on 1 Gb/s, page-exact.
FAST = ("--preset", "small", "--set", "partition.memory_gib=0.25")
# Not migrating, CPU 3 stuck with interrupts off: a hard LOCKUP at 20 s, a panic if the sysctl says so.
STUCK = (
    "--preset",
    "small",
    "--set",
    "migration.enabled=false",
    "--set",
    "sim.max_time_s=25",
    "--set",
    'script=[{cpu=3, at_s=1, state="irqs_hard_off", duration_s=inf}]',
)


def _cli(*args: str) -> tuple[int, str, str]:
    res = cli.invoke(app, ["compare", *args])
    return res.exit_code, res.stdout, res.stderr


def _no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: Any, **_k: Any) -> dict[str, Any]:
        raise AssertionError("a run started although the input was refused")

    monkeypatch.setattr(lpm_runner, "run_scenario", boom)


# -- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "needle"),
    [
        (("-V", "nonsense"), "expected NAME=POLICY"),
        (("-V", "a="), "expected NAME=POLICY"),
        (("-V", "bad name=none"), "the name"),
        (("-V", "a=bogus"), "unknown policy 'bogus'"),
        (("-V", "a=nmi-factor:lots"), "nmi-factor:P"),
        (("-V", "a=nmi-factor:200,faults=3"), "faults: unknown option"),
        (("-V", "a=adaptive-factor,faults=-1"), "faults"),
        (("-V", "a=none,platform.link_gbps=-1"), "variant a: platform.link_gbps"),
        (("-V", "a=none,platform.link_gpbs=3"), "platform.link_gpbs: unknown field"),
        (("-V", "a=none,oops"), "is not key=value"),
        (("-V", "a=none", "-V", "a=disable-nmi"), "used twice"),
        (("-V", "ok=none", "-V", "b=nmi-factor:200+disable-nmi"), "combine at most one"),
        ((), "at least one --variant"),
        (("-V", "a=none", "--set", "mitigation.policy=none"), "--set mitigation.policy=none"),
        (("-V", "a=none", "--set", "platform.link_gbps=-1"), "platform.link_gbps"),
        (("-V", "a=none", "--preset", "nope"), "unknown preset"),
        (("-V", "a=none", "--seed", str(2**63 - 1)), "seeds must stay within"),
    ],
)
def test_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: tuple[str, ...], needle: str
) -> None:
    _no_runs(monkeypatch)
    out = tmp_path / "out"
    base = () if "--preset" in variant else ("--preset", "small")
    code, stdout, err = _cli(*base, *variant, "--runs", "2", "--jobs", "1", "--out", str(out))
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert needle in lines[0]
    assert "Traceback" not in err
    assert stdout == ""
    assert not out.exists()


def test_out_that_is_a_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_runs(monkeypatch)
    f = tmp_path / "file"
    f.write_text("x")
    code, _, err = _cli("--preset", "small", "-V", "a=none", "--out", str(f), "--jobs", "1")
    assert code == 2 and "not a directory" in err


def test_plan_refuses_with_variant_error() -> None:
    base = resolve_scenario(preset="small")
    with pytest.raises(VariantError, match=r"variant b: platform\.link_gbps"):
        plan_runs(base, ["a=none", "b=none,platform.link_gbps=-1"], runs=2)
    with pytest.raises(VariantError, match="at least one run"):
        plan_runs(base, ["a=none"], runs=0)


def test_plan_uses_the_same_seeds_for_every_variant() -> None:
    base = resolve_scenario(preset="small")
    plan = prepare(base, ["a=none", "b=nmi-factor:300,platform.discipline=demand-first"], runs=3, seed=7)
    assert plan.seeds == [7, 8, 9]
    assert [(s.variant, s.seed, s.scenario.sim.seed) for s in plan.specs] == [
        ("a", 7, 7),
        ("a", 8, 8),
        ("a", 9, 9),
        ("b", 7, 7),
        ("b", 8, 8),
        ("b", 9, 9),
    ]
    b = plan.scenarios["b"]
    assert b.mitigation.policy == "nmi-factor:300"
    assert b.platform.discipline == "demand-first"
    assert plan.scenarios["a"].platform.discipline != "demand-first"


# -- rows from summaries -------------------------------------------------------------------------------


def _bug(index: int, by: str | None, start: float | None, detected: float | None) -> dict[str, Any]:
    status = "not_started" if start is None else ("detected" if by else "missed")
    return {
        "index": index,
        "kind": "irqs_hard_off_spin",
        "cpus": [index],
        "due_s": start,
        "start_s": start,
        "detected_by": by,
        "detected_s": detected,
        "delay_s": None if detected is None or start is None else detected - start,
        "missed": status == "missed",
        "status": status,
        "died_first": False,
    }


def _spec() -> RunSpec:
    return RunSpec("v", "none", 3, Scenario())


def test_row_of_a_summary_with_bugs_and_split_reports() -> None:
    watchdogs: dict[str, Any] = {d: {"reports": 2, "cpus": [1], "first_s": 1.0} for d in DETECTORS}
    watchdogs["nmi_ipi"] = {"sent": 4, "timed_out": 1, "unrecoverable": 0}
    summary = {
        "outcome": "crash",
        "crash": {"time_s": 12.5, "cause": "nmi_ipi_timeout", "cpu": 0},
        "watchdogs": watchdogs,
        "reports": {"migration": {"hardlockup": 1}, "bug": {"hardlockup": 1, "softlockup": 2}},
        "bugs": [
            _bug(0, "hardlockup", 5.0, 15.0),
            _bug(1, None, 6.0, None),
            _bug(2, "softlockup", 7.0, 30.0),
            _bug(3, None, None, None),  # never started: not counted
        ],
        "migration": {
            "enabled": True,
            "completed": True,
            "postcopy_s": 17.0,
            "demand_faults": 99,
            "fault_latency_s": {"p99": 0.04},
            "blocktime_s": {"per_vcpu_p99": 15.7},
        },
        "guest": {"throughput_loss_frac": 0.5},
        "wall_s": 0.3,
    }
    row = summary_row(_spec(), summary)
    assert set(row) == set(COLUMN_NAMES)
    assert row["ok"] is True and row["error"] is None
    assert (row["outcome"], row["crash_cause"], row["crash_s"]) == ("crash", "nmi_ipi_timeout", 12.5)
    assert row["reports_hardlockup"] == 2
    assert row["reports_migration_hardlockup"] == 1 and row["reports_migration_softlockup"] == 0
    assert row["reports_bug_softlockup"] == 2
    assert (row["nmi_ipi_sent"], row["nmi_ipi_timed_out"]) == (4, 1)
    assert (row["bugs_injected"], row["bugs_detected"]) == (3, 2)
    assert row["detection_delays_s"] == [10.0, 23.0]
    assert row["detection_delay_median_s"] == 16.5
    assert row["fault_latency_p99_s"] == 0.04 and row["blocktime_per_vcpu_p99_s"] == 15.7
    assert row["postcopy_s"] == 17.0 and row["throughput_loss_frac"] == 0.5 and row["demand_faults"] == 99

    agg = aggregate([row, {**row, "seed": 4, "outcome": "survived", "detection_delays_s": [1.0]}])["v"]
    assert agg["p_crash"]["k"] == 1 and agg["p_crash"]["n"] == 2
    assert agg["bugs_detected"]["k"] == 4 and agg["bugs_detected"]["n"] == 6
    assert agg["detection_delay_median_s"] == 10.0  # pooled over bugs: 1, 10, 10, 23
    assert agg["reports_bug_mean"]["softlockup"] == 2.0
    assert agg["reports_migration_mean"]["rcu_stall"] == 0.0


def test_row_of_a_run_without_migration_or_new_keys() -> None:
    row = summary_row(
        _spec(),
        {
            "outcome": "survived",
            "crash": None,
            "migration": {"enabled": False},
            "guest": None,
            "watchdogs": {},
            "wall_s": 0.01,
        },
    )
    assert row["fault_latency_p99_s"] is None and row["postcopy_s"] is None
    assert row["reports_migration_hardlockup"] is None and row["bugs_injected"] == 0
    agg = aggregate([row])["v"]
    assert agg["reports_migration_mean"] is None and agg["fault_latency_p99_s_median"] is None
    assert agg["bugs_detected"]["p"] is None


# -- real comparisons ----------------------------------------------------------------------------------


def _aggregates(doc: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for v in doc["variants"]:
        res = dict(v["results"])
        res.pop("wall_s_mean")
        out[v["name"]] = res
    return out


def test_end_to_end_and_independent_of_jobs(tmp_path: Path) -> None:
    args = (*FAST, "-V", "base=none", "-V", "f300=nmi-factor:300,platform.discipline=demand-first")
    docs, tables = [], []
    for jobs in ("2", "1"):
        out = tmp_path / f"j{jobs}"
        code, stdout, err = _cli(*args, "--runs", "2", "--seed", "5", "--jobs", jobs, "--out", str(out))
        assert code == 0, err
        assert "Outcomes" in stdout and "f300" in stdout and "P(crash)" in stdout
        docs.append(json.loads((out / "compare.json").read_text()))
        tables.append(pq.read_table(out / "runs.parquet").to_pylist())
    doc = docs[0]
    for key in ("lpmsim_version", "command", "scenario", "seeds", "variants", "failures", "definitions"):
        assert key in doc
    assert doc["scenario"] == "small" and doc["seeds"] == [5, 6] and doc["complete"] is True
    assert doc["command"][:2] == ["lpmsim", "compare"] and "--variant" in doc["command"]
    assert doc["failures"] == []
    f300 = doc["variants"][1]
    assert f300["policy"] == "nmi-factor:300" and f300["overrides"] == ["platform.discipline=demand-first"]
    assert f300["scenario"]["platform"]["discipline"] == "demand-first"
    res = doc["variants"][0]["results"]
    assert res["runs"] == res["ok"] == 2 and res["failed"] == 0
    assert set(res["p_crash"]) == {"k", "n", "p", "ci95_low", "ci95_high"}
    assert set(res["reports_mean"]) == set(DETECTORS)
    assert res["fault_latency_p99_s_median"] > 0 and res["postcopy_s_mean"] > 0
    # the same results whatever the number of processes
    assert _aggregates(docs[0]) == _aggregates(docs[1])
    strip = [[{k: v for k, v in r.items() if k != "wall_s"} for r in t] for t in tables]
    assert strip[0] == strip[1]
    rows = tables[0]
    assert [(r["variant"], r["seed"]) for r in rows] == [("base", 5), ("base", 6), ("f300", 5), ("f300", 6)]
    assert list(rows[0]) == list(COLUMN_NAMES)
    assert all(r["ok"] and r["outcome"] == "survived" for r in rows)


def test_outcomes_and_wilson_in_the_json(tmp_path: Path) -> None:
    out = tmp_path / "o"
    code, stdout, err = _cli(
        *STUCK,
        "-V",
        "panics=none,kernel.hardlockup_panic=1",
        "-V",
        "warns=none",
        "-n",
        "3",
        "-j",
        "1",
        "-o",
        str(out),
        "--json",
    )
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc == json.loads((out / "compare.json").read_text())
    panics, warns = (v["results"] for v in doc["variants"])
    assert panics["outcomes"] == {"survived": 0, "panic": 3, "crash": 0}
    assert panics["p_panic"]["p"] == 1.0 and panics["p_panic"]["ci95_low"] == pytest.approx(0.4385, abs=1e-4)
    assert warns["p_panic"] == {
        "k": 0,
        "n": 3,
        "p": 0.0,
        "ci95_low": 0.0,
        "ci95_high": pytest.approx(0.5615, abs=1e-4),
    }
    assert warns["reports_mean"]["hardlockup"] >= 1
    assert warns["fault_latency_p99_s_median"] is None  # not migrating
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert [r["crash_cause"] for r in rows[:3]] == ["hardlockup_panic"] * 3


def test_failing_run_is_reported_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = lpm_runner.run_scenario

    def flaky(sc: Scenario, *a: Any, **k: Any) -> dict[str, Any]:
        if sc.sim.seed == FAILING_SEED and sc.mitigation.policy == "none":
            raise ValueError("simulated bug")
        return real(sc, *a, **k)

    monkeypatch.setattr(lpm_runner, "run_scenario", flaky)
    out = tmp_path / "o"
    code, stdout, err = _cli(
        *STUCK, "-V", "a=none", "-V", "b=disable-nmi", "-n", "3", "-j", "1", "-o", str(out)
    )
    assert code == 1
    assert "a seed 2: ValueError: simulated bug" in err + stdout
    doc = json.loads((out / "compare.json").read_text())
    assert [(f["variant"], f["seed"], f["error"]) for f in doc["failures"]] == [
        ("a", 2, "ValueError: simulated bug")
    ]
    assert "Traceback" in doc["failures"][0]["traceback"]
    a, b = (v["results"] for v in doc["variants"])
    assert (a["runs"], a["ok"], a["failed"]) == (3, 2, 1)
    assert (b["runs"], b["ok"], b["failed"]) == (3, 3, 0)
    rows = pq.read_table(out / "runs.parquet").to_pylist()
    assert len(rows) == 6
    bad = [r for r in rows if not r["ok"]]
    assert [(r["variant"], r["seed"], r["outcome"]) for r in bad] == [("a", 2, None)]


def test_failing_run_in_a_worker_process() -> None:
    base = resolve_scenario(preset="small", overrides=["partition.memory_gib=0.25"])
    seen: list[tuple[str, int, bool]] = []
    res = compare(
        base,
        ["x=none", "y=nmi-factor:200"],
        runs=3,
        jobs=2,
        simulate=fail_on_seed_2,
        progress=lambda r, done, total: seen.append((r.variant, r.seed, r.ok)),
    )
    assert len(set(seen)) == 6  # every run reported once
    assert [(r.variant, r.seed) for r in res.results] == [(v, s) for v in "xy" for s in (1, 2, 3)]
    assert [(r.variant, r.seed, r.error) for r in res.failures] == [
        ("x", 2, "RuntimeError: injected failure for seed 2"),
        ("y", 2, "RuntimeError: injected failure for seed 2"),
    ]
    assert res.aggregates["x"]["ok"] == 2 and res.aggregates["x"]["failed"] == 1
    assert not res.interrupted


def test_out_below_a_file_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the store lives in --out: a directory that cannot be made is refused before any run
    _no_runs(monkeypatch)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, stdout, err = _cli(*STUCK, "-V", "a=none", "-n", "1", "-j", "1", "-o", str(blocker / "sub"))
    assert code == 2 and stdout == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "is not a directory" in lines[0]


def test_unwritable_exports_print_everything_and_exit_1(tmp_path: Path) -> None:
    out = tmp_path / "o"
    (out / "runs.parquet").mkdir(parents=True)  # the export cannot replace a directory
    code, stdout, err = _cli(*STUCK, "-V", "a=none", "-n", "1", "-j", "1", "-o", str(out))
    assert code == 1
    assert "Outcomes" in stdout
    doc = json.loads(stdout[stdout.index("{\n") :])
    assert doc["variants"][0]["results"]["ok"] == 1
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "cannot write" in lines[0]
    assert not (out / "compare.json").exists()


def test_injected_bugs_are_scored() -> None:
    base = resolve_scenario(
        preset="small",
        overrides=["partition.memory_gib=0.25", 'bugs=[{kind="irqs_hard_off_spin", window_s=[0, 5]}]'],
    )
    res = compare(base, ["a=none"], runs=2, jobs=1)
    agg = res.aggregates["a"]
    assert agg["bugs_detected"]["n"] == 2
    assert agg["bugs_detected"]["k"] >= 1
    assert agg["detection_delay_median_s"] > 0
    assert agg["reports_bug_mean"] is not None and agg["reports_migration_mean"] is not None
    assert all(r["bugs_injected"] == 1 for r in res.rows)

"""The Python API (``lpmsim.run``, ``compare``, ``sweep``, ``triage``): same results as the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import lpmsim
from lpmsim.cli.main import app
from lpmsim.config.loader import ScenarioError, load_scenario
from lpmsim.triage.events import Event, Phase

# Not migrating, CPU 3 stuck with interrupts off from 1 s: a hard LOCKUP report within 25 s.
STUCK: dict[str, Any] = {
    "migration.enabled": False,
    "sim.max_time_s": 25,
    "script": [{"cpu": 3, "at_s": 1, "state": "irqs_hard_off", "duration_s": math.inf}],
}
STUCK_CLI = [
    "--preset",
    "small",
    "--set",
    "migration.enabled=false",
    "--set",
    "sim.max_time_s=25",
    "--set",
    'script=[{cpu=3, at_s=1, state="irqs_hard_off", duration_s=inf}]',
]
FAST = {"partition.memory_gib": 0.25}
TRIAGE_LOG = Path(__file__).parent.parent / "data" / "triage" / "030.log"


def _no_wall(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "wall_s"}


def test_run_matches_the_cli(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", *STUCK_CLI, "--seed", "3", "--out", str(tmp_path), "-q"])
    assert res.exit_code == 0, res.output
    cli_summary = json.loads((tmp_path / "summary.json").read_text())
    r = lpmsim.run("small", seed=3, set=STUCK)
    assert isinstance(r, lpmsim.RunOutput)
    assert _no_wall(r.summary) == _no_wall(cli_summary)
    assert r.log == tuple((tmp_path / "dmesg.log").read_text().splitlines())
    assert r.events and all(isinstance(e, lpmsim.KernelEvent) for e in r.events)
    assert [e.detector for e in r.events] == [e["detector"] for e in cli_summary["events"]]
    assert r.events[0].detector == "hardlockup" and r.events[0].cpus == (3,)
    line = r.events[0].line
    assert line is not None and any(x.endswith("] " + line) for x in r.log)
    assert r.trace is None
    with pytest.raises(AttributeError):
        r.events[0].time_s = 0.0  # type: ignore[misc]


def test_run_takes_a_scenario_or_a_file(tmp_path: Path) -> None:
    by_name = lpmsim.run("small", seed=2, set=STUCK)
    sc = load_scenario(preset="small", seed=2)
    by_object = lpmsim.run(sc, set=STUCK)
    assert _no_wall(by_object.summary)["events"] == by_name.summary["events"]
    f = tmp_path / "case.toml"
    f.write_text('base = "small"\n[migration]\nenabled = false\n[sim]\nmax_time_s = 25\n')
    by_file = lpmsim.run(f, seed=2, set={"script": STUCK["script"]})
    assert by_file.summary["events"] == by_name.summary["events"]
    assert by_file.scenario.name == "case"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"platform.link_gbps": -5}, "platform.link_gbps:"),
        ({"platform.no_such_field": 1}, "platform.no_such_field: unknown field"),
        ({"kernel.watchdog_thresh": 61}, "kernel.watchdog_thresh:"),
    ],
)
def test_bad_set_raises_scenario_error(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ScenarioError) as err:
        lpmsim.run("small", set=settings)
    assert str(err.value).startswith(field)
    assert "\n" not in str(err.value)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match=r"unknown preset 'lpm-2O22'.*lpm-2022"):
        lpmsim.run("lpm-2O22")


def test_compare_rows_are_a_dataframe() -> None:
    c = lpmsim.compare("small", ["none=none", "f200=nmi-factor:200"], runs=2, seed=5, set=FAST, jobs=1)
    assert isinstance(c, lpmsim.Comparison) and c.complete
    assert isinstance(c.rows, pd.DataFrame)
    assert list(c.rows["variant"]) == ["none", "none", "f200", "f200"]
    assert list(c.rows["seed"]) == [5, 6, 5, 6]
    assert set(c.aggregates) == {"none", "f200"}
    # the same seed under the same scenario: the same run as lpmsim.run
    r = lpmsim.run("small", seed=5, set={**FAST, "mitigation.policy": "none"})
    assert c.rows["outcome"].iloc[0] == r.outcome


def test_rows_without_pandas_are_an_arrow_table(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    from lpmsim.api import tables

    monkeypatch.setattr(tables, "has_pandas", lambda: False)
    c = lpmsim.compare("small", ["none=none"], runs=1, set=FAST, jobs=1)
    assert isinstance(c.rows, pa.Table) and c.rows.num_rows == 1


def test_sweep_over_an_axis(tmp_path: Path) -> None:
    s = lpmsim.sweep("small", {"partition.vcpus": [4, 8]}, runs=1, set=FAST, jobs=1, out_dir=tmp_path)
    assert isinstance(s, lpmsim.Sweep) and s.complete
    assert isinstance(s.rows, pd.DataFrame)
    assert list(s.rows["partition.vcpus"]) == [4, 8]
    assert (tmp_path / "sweep.sqlite").is_file()


def test_sweep_file(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(
        'preset = "small"\nset = ["partition.memory_gib=0.25"]\nvariants = ["none=none"]\nseeds = 1\n'
        '[axes]\n"platform.link_gbps" = [1, 2]\n'
    )
    s = lpmsim.sweep(f, jobs=1)
    assert list(s.rows["platform.link_gbps"]) == [1, 2]


def test_triage_of_a_corpus_log_returns_typed_events() -> None:
    t = lpmsim.triage(TRIAGE_LOG)
    assert isinstance(t, lpmsim.TriageOutput)
    assert [e.type for e in t.events] == ["hardlockup", "panic"]
    assert all(isinstance(e, Event) for e in t.events)
    assert lpmsim.triage.triage_file(str(TRIAGE_LOG)).to_json() == t.result.to_json()


def test_triage_of_a_simulated_log_finds_its_phases(tmp_path: Path) -> None:
    r = lpmsim.run("small", seed=3, set=FAST)
    log = tmp_path / "dmesg.log"
    log.write_text("".join(line + "\n" for line in r.log))
    t = lpmsim.triage(log)
    assert [p.name for p in t.phases] == ["before_suspend", "suspend", "transfer", "after_transfer"]
    assert all(isinstance(p, Phase) for p in t.phases)
    assert t.phases[2].end_s == pytest.approx(r.summary["lpm"]["completed_seen_s"], abs=1e-6)


def test_guard_imports_stay_light() -> None:
    code = (
        "import sys, lpmsim, lpmsim.guard\n"
        "print(sorted(m for m in ('numpy', 'pydantic', 'rich', 'pyarrow', 'typer') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_all_names_resolve() -> None:
    for name in lpmsim.__all__:
        assert getattr(lpmsim, name) is not None
    with pytest.raises(AttributeError):
        _ = lpmsim.no_such_name  # type: ignore[attr-defined]


def test_compare_through_a_store_resumes(tmp_path: Path) -> None:
    sc = load_scenario(preset="small", overrides=["partition.memory_gib=0.25"])
    calls: list[int] = []
    first = lpmsim.compare(sc, ["none=none"], runs=2, jobs=1, out_dir=tmp_path)
    again = lpmsim.compare(
        sc, ["none=none"], runs=2, jobs=1, out_dir=tmp_path, progress=lambda _r, n, _t: calls.append(n)
    )
    assert calls == []  # every run was in the store already
    assert again.rows.equals(first.rows)
    with pytest.raises(TypeError):
        lpmsim.sweep(sc)

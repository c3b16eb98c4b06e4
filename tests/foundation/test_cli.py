"""End-to-end CLI: ``lpmsim run``, ``presets``, ``validate``, ``explain`` and every bad-input case."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpmsim.cli.main import app

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_run_json_has_the_contract_keys() -> None:
    code, out, _ = _run("run", "--preset", "small", "--json")
    assert code == 0
    s = json.loads(out)
    for key in ("seed", "scenario", "migration", "wall_s"):
        assert key in s
    m = s["migration"]
    for key in (
        "precopy_s",
        "precopy_rounds",
        "blackout_s",
        "postcopy_s",
        "total_s",
        "pages_total",
        "pages_missing_at_resume",
        "demand_faults",
    ):
        assert key in m
    assert set(m["fault_latency_s"]) >= {"p50", "p99", "max"}
    assert set(m["blocktime_s"]) >= {"total", "per_vcpu_max"}
    assert m["total_s"] == pytest.approx(m["precopy_s"] + m["blackout_s"] + m["postcopy_s"])
    assert s["scenario"]["name"] == "small"


def test_run_out_writes_summary_and_table(tmp_path: Path) -> None:
    code, out, _ = _run("run", "--preset", "small", "--out", str(tmp_path), "--seed", "4")
    assert code == 0
    assert "post-copy" in out
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["seed"] == 4


def test_run_scenario_file_with_base_and_set(tmp_path: Path) -> None:
    f = tmp_path / "case.toml"
    f.write_text('base = "small"\n[platform]\nlink_gbps = 2.5\n')
    code, out, _ = _run("run", str(f), "--json", "--set", "platform.discipline=demand-first")
    assert code == 0
    sc = json.loads(out)["scenario"]
    assert sc["platform"]["link_gbps"] == 2.5
    assert sc["platform"]["discipline"] == "demand-first"
    assert sc["partition"]["vcpus"] == 8  # from the base preset


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        ("[platform]\nlink_gbps = -1\n", (), "platform.link_gbps"),
        ("[platform]\nlink_gpbs = 10\n", (), "platform.link_gpbs: unknown field"),
        ('[partition]\nvcpus = "many"\n', (), "partition.vcpus"),
        ("[partition]\nmemory_gib = 0.00001\n", (), "partition.memory_gib"),
        ("this is [not toml\n", (), "not valid TOML"),
        ('base = "nope"\n', (), "unknown preset"),
        ("", ("--set", "sim.mode=warp"), "sim.mode"),
        ("", ("--set", "platform.rtt_us"), "expected FIELD=VALUE"),
        ("", ("--set", "migration.resume_missing_fraction=1.5"), "migration.resume_missing_fraction"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, content: str, args: tuple[str, ...], needle: str
) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(content)
    for cmd in ("run", "validate"):
        code, _out, err = _run(cmd, str(f), *args)
        assert code == 2, (cmd, err)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert len(lines) == 1, err
        assert needle in lines[0]
        assert "Traceback" not in err


def test_missing_file_and_directory(tmp_path: Path) -> None:
    code, _, err = _run("run", str(tmp_path / "nope.toml"))
    assert code == 2 and "no such file" in err
    code, _, err = _run("validate", str(tmp_path))
    assert code == 2 and "is a directory" in err


def test_presets_validate_explain() -> None:
    code, out, _ = _run("presets")
    assert code == 0
    for name in ("small", "default", "large", "lpm-2022"):
        assert name in out
    code, out, _ = _run("validate", "--preset", "large")
    assert code == 0 and "ok" in out
    code, out, _ = _run("explain", "platform.rtt_us")
    assert code == 0 and "µs" in out
    code, _, err = _run("explain", "platform.nope")
    assert code == 2 and "unknown field" in err


def test_large_preset_matches_the_brief() -> None:
    _code, out, _ = _run("validate", "--preset", "large", "--show")
    sc = json.loads(out)
    assert sc["partition"] == {"vcpus": 1920, "memory_gib": 16384.0, "smt": 8, "numa_nodes": 1}
    assert sc["platform"]["link_gbps"] == 25.0


@pytest.mark.parametrize("mode", ["exact", "fluid"])
def test_same_scenario_and_seed_give_identical_summary(tmp_path: Path, mode: str) -> None:
    f = tmp_path / "s.toml"
    f.write_text(f'base = "small"\n[sim]\nmode = "{mode}"\n')
    outs = []
    for i in range(2):
        d = tmp_path / f"o{i}"
        subprocess.run(
            [sys.executable, "-m", "lpmsim.cli", "run", str(f), "--seed", "9", "-q", "--out", str(d)],
            check=True,
        )
        text = (d / "summary.json").read_text()
        s = json.loads(text)
        s["wall_s"] = 0.0
        outs.append(json.dumps(s))
    assert outs[0] == outs[1]
    d = tmp_path / "other"
    subprocess.run(
        [sys.executable, "-m", "lpmsim.cli", "run", str(f), "--seed", "10", "-q", "--out", str(d)], check=True
    )
    assert json.loads((d / "summary.json").read_text())["migration"] != json.loads(outs[0])["migration"]


def test_run_that_ends_during_precopy_is_consistent() -> None:
    code, out, _ = _run("run", "--preset", "small", "--json", "--set", "sim.max_time_s=10")
    assert code == 0
    m = json.loads(out)["migration"]
    assert m["resumed"] is False and m["completed"] is False
    assert m["precopy_s"] == 10.0 and m["postcopy_s"] == 0.0 and m["total_s"] == 10.0
    assert m["pages_missing_at_resume"] is None
    code, out, _ = _run("run", "--preset", "small", "--set", "sim.max_time_s=10")
    assert code == 0 and "(not resumed)" in out


def test_scenario_reference_is_up_to_date() -> None:
    """docs/scenario-reference.md is generated: `lpmsim explain --markdown > docs/scenario-reference.md`."""
    from lpmsim.config.explain import reference_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "scenario-reference.md"
    assert doc.read_text(encoding="utf-8") == reference_markdown()


def test_terminal_summary_shows_the_guest_metrics() -> None:
    code, out, _ = _run("run", "--preset", "small")
    assert code == 0
    for row in ("throughput lost after resume", "longest spin / most spinners", "per-vCPU blocktime"):
        assert row in out

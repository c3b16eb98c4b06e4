"""The kernel section through the CLI and the runner: validation, outputs, summary keys, laziness."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpmsim.cli.main import app
from lpmsim.config.loader import build_scenario, load_scenario
from lpmsim.kernel.printk import format_prefix
from lpmsim.runner import simulate, summarise

from .harness import BASE, MIGRATION, merge

runner = CliRunner()

CASE = """
base = "small"
[migration]
enabled = false
[sim]
max_time_s = 130
[kernel]
nmi_ri0_prob = { irqs_hard_off = 0 }
[[script]]
cpu = 5
at_s = 101
state = "irqs_hard_off"
duration_s = inf
"""


@pytest.mark.parametrize(
    ("setting", "path"),
    [
        ("kernel.watchdog_thresh=61", "kernel.watchdog_thresh"),
        ("kernel.watchdog_thresh=-1", "kernel.watchdog_thresh"),
        ("kernel.rcu_cpu_stall_timeout=2", "kernel.rcu_cpu_stall_timeout"),
        ("kernel.rcu_cpu_stall_timeout=301", "kernel.rcu_cpu_stall_timeout"),
        ("kernel.nmi_watchdog=2", "kernel.nmi_watchdog"),
        ("kernel.hardlockup_panic=2", "kernel.hardlockup_panic"),
        ("kernel.softlockup_panic=-1", "kernel.softlockup_panic"),
        ("kernel.panic_on_rcu_stall=3", "kernel.panic_on_rcu_stall"),
        ("kernel.hung_task_timeout_secs=-5", "kernel.hung_task_timeout_secs"),
        ("kernel.hung_task_panic=2", "kernel.hung_task_panic"),
        ("kernel.hung_task_warnings=-2", "kernel.hung_task_warnings"),
        ("kernel.nmi_wd_lpm_factor=-1", "kernel.nmi_wd_lpm_factor"),
        ("kernel.nmi_wd_lpm_factor=4294967296", "kernel.nmi_wd_lpm_factor"),
        ("kernel.wq_watchdog_thresh=-1", "kernel.wq_watchdog_thresh"),
        ("kernel.version=v5.4", "kernel.version"),
        ("kernel.no_such_sysctl=1", "kernel.no_such_sysctl"),
    ],
)
def test_out_of_range_sysctl_exit_2(setting: str, path: str) -> None:
    res = runner.invoke(app, ["run", "--preset", "small", "--set", setting, "--json"])
    assert res.exit_code == 2
    assert f"{path}:" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_bad_script_entry_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(CASE.replace('state = "irqs_hard_off"', 'state = "asleep"'))
    res = runner.invoke(app, ["run", str(f), "--json"])
    assert res.exit_code == 2
    assert "script[0].state:" in res.stderr


def test_zero_disables_where_the_kernel_says_so() -> None:
    sc = load_scenario(
        preset="small",
        overrides=[
            "kernel.watchdog_thresh=0",
            "kernel.hung_task_timeout_secs=0",
            "kernel.wq_watchdog_thresh=0",
        ],
    )
    assert sc.kernel.watchdog_thresh == 0


def test_presets_upstream_and_sles() -> None:
    up = load_scenario(preset="small").kernel
    assert (up.hung_task_timeout_secs, up.rcu_cpu_stall_timeout, up.printk_caller) == (120, 21, False)
    sles = load_scenario(preset="small", overrides=["kernel.preset=sles"]).kernel
    assert (sles.hung_task_timeout_secs, sles.rcu_cpu_stall_timeout, sles.printk_caller, sles.hz) == (
        480,
        60,
        True,
        100,
    )
    # an explicit value wins over the preset
    own = load_scenario(
        preset="small", overrides=["kernel.preset=sles", "kernel.hung_task_timeout_secs=240"]
    ).kernel
    assert own.hung_task_timeout_secs == 240
    for k in (up, sles):
        assert (k.nmi_wd_lpm_factor, k.watchdog_thresh, k.hardlockup_panic, k.softlockup_panic) == (
            200,
            10,
            0,
            0,
        )


def test_run_case_file_writes_dmesg_and_summary(tmp_path: Path) -> None:
    f = tmp_path / "case.toml"
    f.write_text(CASE)
    res = runner.invoke(app, ["run", str(f), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.stderr
    assert "hardlockup reports" in res.stdout and "outcome" in res.stdout
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["outcome"] == "survived" and s["crash"] is None
    assert s["watchdogs"]["hardlockup"] == {"reports": 1, "cpus": [5], "first_s": 120.0}
    assert s["watchdogs"]["nmi_ipi"] == {"sent": 1, "timed_out": 0, "unrecoverable": 0}
    for e in s["events"]:
        assert set(e) == {"time_s", "detector", "kind", "cpus", "by", "line", "cause"}
        assert e["cause"] == "migration"  # no injected bug (lpmsim.bugs): the script's
    log = (tmp_path / "out" / "dmesg.log").read_text().splitlines()
    assert log[0] == "[  120.000000] watchdog: CPU 0 detected hard LOCKUP on other CPUs 5"
    assert all(re.match(r"^\[ *\d+\.\d{6}\] ", ln) for ln in log)
    assert s["scenario"]["script"][0]["duration_s"] == "inf"  # JSON has no infinity


def test_summary_keys_without_kernel_activity() -> None:
    st = simulate(build_scenario(merge(BASE, {"sim": {"max_time_s": 10}})))
    s = summarise(st, 0.0)
    assert s["outcome"] == "survived" and s["events"] == []
    assert set(s["watchdogs"]) == {
        "hardlockup",
        "softlockup",
        "rcu_stall",
        "workqueue_lockup",
        "hung_task",
        "nmi_ipi",
    }


def test_migrating_run_reports_the_lpm_flow() -> None:
    st = simulate(build_scenario(merge(MIGRATION, {"kernel": {"post_mobility_rtas": []}})))
    s = summarise(st, 0.0)
    lpm = s["lpm"]
    # ssleep(1) from t=0: 101 jiffies, rounded up to the wheel's 8-jiffy level -> 1.04; resume
    # 0.25 s later; msleep(500) from 1.290015 (jiffy 129): 51 jiffies -> jiffy 180 = 1.80
    assert lpm["factor_set_s"] == 1.04 and lpm["suspend_s"] == 1.04 and lpm["resume_s"] == pytest.approx(1.29)
    assert lpm["factor_cleared_s"] == pytest.approx(1.80)
    m = s["migration"]
    assert m["total_s"] == pytest.approx(m["precopy_s"] + m["blackout_s"] + m["postcopy_s"])
    assert m["suspend_wait_s"] == pytest.approx(1.04 - m["precopy_rounds_s"])


def test_deterministic_for_a_seed() -> None:
    data = merge(BASE, {"kernel": {"nmi_ri0_prob": {"irqs_hard_off": 0.5}}, "sim": {"max_time_s": 300}})
    data["script"] = [
        {"cpu": c, "at_s": 10 + c, "state": "irqs_hard_off", "duration_s": 40} for c in (1, 3, 5)
    ]
    a = summarise(simulate(build_scenario(data)), 0.0)
    b = summarise(simulate(build_scenario(data)), 0.0)
    assert a["events"] == b["events"] and a["outcome"] == b["outcome"]


def test_printk_prefix_and_caller_id() -> None:
    assert format_prefix(5.5, None, False) == "[    5.500000] "
    assert format_prefix(69244.027433, "C24", True) == "[69244.027433][   C24] "
    data = merge(BASE, {"kernel": {"preset": "sles"}, "sim": {"max_time_s": 130}})
    data["script"] = [{"cpu": 4, "at_s": 100.5, "state": "preempt_off", "duration_s": "inf"}]
    st = simulate(build_scenario(data))
    assert st.kernel is not None
    assert (
        "[  124.000000][    C4] watchdog: BUG: soft lockup - CPU#4 stuck for 22s! [script/4:1004]"
        in st.kernel.model.log.lines()
    )


def test_lazy_detectors_on_a_large_partition() -> None:
    """1,920 vCPUs for 3,000 s with one stuck CPU: no periodic event per CPU (a few thousand at most)."""
    data = merge(BASE, {"partition": {"vcpus": 1920, "memory_gib": 64}, "sim": {"max_time_s": 3000}})
    data["script"] = [{"cpu": 7, "at_s": 1000.5, "state": "irqs_soft_off", "duration_s": 100}]
    st = simulate(build_scenario(data))
    assert st.events < 5000
    s = summarise(st, 0.0)
    assert s["watchdogs"]["hardlockup"]["cpus"] == [7]

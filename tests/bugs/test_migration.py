"""Bugs in a migrating partition (the ``small`` preset): told apart from migration-caused reports,
started when the CPU runs again after stop_machine, and given time to be detected."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from lpmsim.config.loader import load_scenario
from lpmsim.guest.cpustate import Ctx
from lpmsim.kernel.model import DETECTORS
from lpmsim.runner import run_scenario, simulate, summarise

# 0.2 Gb/s and no LPM factor: drmgr's RTAS calls on CPU 0 stall long on missing firmware pages
# after resume (resumed at ~489 s): CPU 1 reports a hard lockup of CPU 0 at 504 s, RCU at 510 s.
SLOW = ["sim.mode=fluid", "platform.link_gbps=0.2", "kernel.nmi_wd_lpm_factor=0"]
NMI_NOT_RI0 = [
    f"kernel.nmi_ri0_prob.{k}=0" for k in ("kernel", "preempt_off", "irqs_soft_off", "irqs_hard_off", "rtas")
]


def _run(overrides: list[str]) -> dict[str, Any]:
    return run_scenario(load_scenario(preset="small", overrides=overrides))


@cache
def _small_fluid_times() -> tuple[float, float]:
    """(suspended, resumed) of the small preset in fluid mode: bugs after resume do not change them."""
    s = _run(["sim.mode=fluid"])
    vasi = s["migration"]["vasi"]
    return vasi["suspended_s"], vasi["resumed_s"]


def test_bug_and_migration_reports_are_told_apart() -> None:
    # no external interrupts, so the soft-masked spin stays reachable by the soft-NMI; a 60 s RCU
    # stall timeout puts RCU's resched IPI to the holdout (which would hard-mask it, issue 13 s3)
    # at 30 s, after the soft-NMI report
    s = _run(
        [
            *SLOW,
            *NMI_NOT_RI0,
            "workload.irq_rate_hz=0",
            "kernel.rcu_cpu_stall_timeout=60",
            'bugs=[{kind="irqs_soft_off_spin", cpu=5, at_s=0}]',
        ]
    )
    (b,) = s["bugs"]
    resume = s["lpm"]["resume_s"]
    # at_s = 0 after resume: the CPU runs ordinary code once the mobility flow has prodded every
    # CPU (7 x hprod_us 5 us) and released stop_machine
    assert b["start_s"] == pytest.approx(resume + 7 * 5e-6)
    assert b["detected_by"] == "hardlockup" and b["status"] == "detected"
    assert 6.0 <= b["delay_s"] <= 14.2  # soft-NMI: 10 s after the last heartbeat, DEC every 4.19 s
    first = next(e for e in s["events"] if 5 in e["cpus"])
    assert first["time_s"] == b["detected_s"] and first["cause"] == "bug:0"
    assert first["line"].startswith("watchdog: CPU 5 self-detected hard LOCKUP")
    # the RTAS stalls of CPU 0 are the migration's
    for e in s["events"]:
        expected = "bug:0" if 5 in e["cpus"] else "migration"
        assert e["cause"] == expected, e
    assert s["reports"]["migration"]["hardlockup"] >= 1
    assert s["reports"]["bug"]["hardlockup"] >= 1
    # the split adds up to the per-detector counts
    for det in DETECTORS:
        total = s["reports"]["migration"][det] + s["reports"]["bug"][det]
        assert total == s["watchdogs"][det]["reports"]


def test_migration_crash_before_detection_is_missed() -> None:
    # pre-v6.0 enters RTAS with MSR[RI]=0: the NMI IPI to CPU 0 at 504 s crashes the partition,
    # 15 s after a d_state bug started, long before khungtaskd could report it.
    s = _run(
        [
            "sim.mode=fluid",
            "platform.link_gbps=0.2",
            "kernel.version=pre-v6.0",
            'bugs=[{kind="d_state", cpu=5, at_s=0}]',
        ]
    )
    (b,) = s["bugs"]
    assert s["outcome"] == "crash" and s["crash"]["cause"] == "unrecoverable_system_reset"
    assert b["status"] == "missed" and b["missed"] is True and b["died_first"] is True
    assert {e["cause"] for e in s["events"]} == {"migration"}


def test_bug_due_while_suspended_starts_when_stop_machine_lets_go() -> None:
    suspended, resumed = _small_fluid_times()
    at = (suspended + resumed) / 2
    s = _run(["sim.mode=fluid", f'bugs=[{{kind="irqs_hard_off_spin", cpu=3, at_s={at}, after="start"}}]'])
    (b,) = s["bugs"]
    assert b["due_s"] == pytest.approx(at)
    assert b["start_s"] == pytest.approx(resumed + 7 * 5e-6)
    assert b["status"] == "detected"


def test_bug_on_the_drmgr_cpu_moves_the_rtas_calls() -> None:
    st = simulate(
        load_scenario(
            preset="small", overrides=["sim.mode=fluid", 'bugs=[{kind="irqs_soft_off_spin", cpu=0, at_s=0}]']
        )
    )
    s = summarise(st, 0.0)
    (b,) = s["bugs"]
    # post_mobility_fixup() ran (on CPU 1) and the flow reached its end
    assert s["lpm"]["fixup_done_s"] is not None and s["lpm"]["end_s"] is not None
    assert b["status"] == "detected" and b["cpus"] == [0]
    assert st.cpus is not None
    c0 = st.cpus.cpus[0]
    assert (c0.ctx, c0.task.comm, c0.stalled, c0.spinning) == (Ctx.IRQS_SOFT_OFF, "bug/0", False, None)


def test_bug_before_suspend_blocks_stop_machine() -> None:
    s = _run(
        [
            "sim.mode=fluid",
            "sim.max_time_s=200",
            'bugs=[{kind="abba_deadlock", cpu=2, cpu2=6, at_s=10, after="start"}]',
        ]
    )
    (b,) = s["bugs"]
    # the deadlocked CPUs never run their stopper threads: the partition never suspends
    assert s["migration"]["vasi"]["suspended_s"] is None and s["migration"]["resumed"] is False
    assert b["start_s"] == 10.0 and b["status"] == "detected"


def test_d_state_after_resume_gets_its_detection_horizon() -> None:
    # The flow ends at ~110 s; without the bug the run stops kernel.tail_s = 20 s later.  The hung
    # task (blocked at ~93.25) is seen by khungtaskd at 120 and reported at 240: the run goes on.
    s = _run(["sim.mode=fluid", 'bugs=[{kind="d_state", cpu=4, at_s=0}]'])
    (b,) = s["bugs"]
    assert (b["detected_by"], b["detected_s"]) == ("hung_task", 240.0)
    assert s["lpm"]["end_s"] < 120
    # with a 10 s horizon the run ends long before: missed
    s = _run(["sim.mode=fluid", 'bugs=[{kind="d_state", cpu=4, at_s=0, horizon_s=10}]'])
    assert s["bugs"][0]["status"] == "missed"


def test_bug_never_due_when_the_partition_never_resumes() -> None:
    s = _run(["sim.mode=fluid", "sim.max_time_s=20", 'bugs=[{kind="d_state", at_s=0}]'])
    (b,) = s["bugs"]
    assert b["due_s"] is None and b["start_s"] is None and b["status"] == "not_started"


def test_exact_mode_claimed_cpus_keep_the_bug_state() -> None:
    st = simulate(
        load_scenario(
            preset="small", overrides=['bugs=[{kind="abba_deadlock", cpu=1, cpu2=4, at_s=1, irqsave=true}]']
        )
    )
    s = summarise(st, 0.0)
    (b,) = s["bugs"]
    assert b["status"] == "detected" and b["detected_by"] in ("hardlockup", "rcu_stall")
    assert b["start_s"] >= b["due_s"]  # later if a vCPU was stalled on a fault at the bug's time
    assert st.cpus is not None and st.guest is not None
    # after the transfer completed the exact guest's processes ended; a claimed vCPU's never wrote
    # its state again (an unclaimed one ends in user mode)
    c1, c4 = st.cpus.cpus[1], st.cpus.cpus[4]
    assert (c1.ctx, c1.spinning, c1.stalled, c1.task.pid) == (Ctx.IRQS_SOFT_OFF, "bug0_lock_b", False, 30000)
    assert (c4.ctx, c4.spinning, c4.stalled, c4.task.pid) == (Ctx.IRQS_SOFT_OFF, "bug0_lock_a", False, 30001)
    assert st.guest.claimed == {1, 4}
    assert st.cpus.cpus[0].ctx == Ctx.USER

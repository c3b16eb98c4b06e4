"""Migration phases, lpmsim-guard lines, verdicts, crash path and calibration on synthetic logs built
from the kernel's own format strings (mobility.c, watchdog.c, traps.c)."""

from __future__ import annotations

import pytest

from lpmsim.triage import triage_text
from lpmsim.triage.calibrate import bounds

LPM_LOG = """\
[  100.000000] lpmsim-guard: applied policy nmi-factor:200 (phase pre): kernel.watchdog_thresh 10 -> 30
[  101.000000] watchdog: Set the NMI watchdog timeout factor to 200%
[  101.500000] mobility: calling ibm,suspend-me on CPU 3
[  103.000000] mobility: CPU 3 waking all threads
[  104.000000] mobility: waiting for memory transfer to complete...
[  130.000000] watchdog: BUG: soft lockup - CPU#5 stuck for 22s! [java:4242]
[  130.000100] CPU: 5 PID: 4242 Comm: java Not tainted 6.4.0-150600.23.7-default #1
[  130.000200] NIP [c000000000a1b2c0] memcpy_power7+0x40/0x800
[  131.000000] watchdog: BUG: soft lockup - CPU#6 stuck for 23s! [kworker/6:1:99]
[  132.000000] watchdog: BUG: soft lockup - CPU#7 stuck for 23s! [kworker/7:1:98]
[  160.000000] mobility: memory transfer completed.
[  160.000100] watchdog: Set the NMI watchdog timeout factor to 0%
[  161.000000] lpmsim-guard: restored kernel.watchdog_thresh 30 -> 10 (phase post)
[  900.000000] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:777]
[  900.000100] CPU: 1 PID: 777 Comm: spin Not tainted 6.4.0 #1
[  900.000200] NIP [c000000000f3a8c0] _raw_spin_lock+0x30/0x70
"""


def test_phases_and_guard_lines() -> None:
    tri = triage_text(LPM_LOG)
    names = [(p.name, p.start_line, p.end_line) for p in tri.phases]
    assert names == [
        ("before_suspend", 1, 2),
        ("suspend", 2, 4),
        ("transfer", 4, 11),
        ("after_transfer", 11, 16),
    ]
    assert tri.phases[1].start_s == pytest.approx(101.0)
    assert tri.phases[-1].end_s == pytest.approx(900.0002)
    guard = [e for e in tri.events if e.type == "lpm_phase" and e.reason.startswith("lpmsim-guard: ")]
    assert [e.line for e in guard] == [1, 13]
    assert guard[0].reason == (
        "lpmsim-guard: applied policy nmi-factor:200 (phase pre): kernel.watchdog_thresh 10 -> 30"
    )
    assert guard[0].phase == "before_suspend"
    assert all(e.verdict == "phase" for e in tri.events if e.type == "lpm_phase")
    assert [e.line for e in tri.events if e.type == "lpm_phase"] == [1, 2, 3, 4, 5, 11, 12, 13]


def test_verdicts() -> None:
    tri = triage_text(LPM_LOG)
    soft = {e.line: e for e in tri.events if e.type == "softlockup"}
    assert soft[6].phase == "transfer" and soft[6].verdict == "consistent"
    assert "transfer window" in soft[6].reason and "memcpy_power7" in soft[6].reason
    assert soft[6].task == "java:4242" and soft[6].cpus == [5]
    assert soft[14].phase == "after_transfer" and soft[14].verdict == "inconsistent"
    assert "_raw_spin_lock" in soft[14].reason and "after the transfer completed" in soft[14].reason


def test_guard_syslog_tag_form() -> None:
    log = "Nov 27 04:00:00 lpar1 lpmsim-guard[812]: applied policy nmi-factor:200 (phase pre): x 1 -> 2\n"
    tri = triage_text(log)
    assert [(e.type, e.reason) for e in tri.events] == [
        ("lpm_phase", "lpmsim-guard: applied policy nmi-factor:200 (phase pre): x 1 -> 2")
    ]
    assert tri.phases[0].name == "before_suspend"


def test_no_migration_means_unknown_phase() -> None:
    tri = triage_text("[    5.000000] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [a:1]\n")
    assert tri.phases == []
    assert tri.events[0].phase is None and tri.events[0].verdict == "unknown"


def test_pre_v6_post_mobility_opens_transfer_window() -> None:
    log = (
        "[  10.0] Post-mobility device tree update failed: -5\n"
        "[  30.0] INFO: task kworker/0:1:12 blocked for more than 120 seconds.\n"
    )
    tri = triage_text(log)
    assert [p.name for p in tri.phases] == ["before_suspend", "transfer"]
    assert tri.events[1].phase == "transfer"


def test_failed_suspend_is_aborted() -> None:
    log = (
        "[ 1.0] watchdog: Set the NMI watchdog timeout factor to 200%\n"
        "[ 2.0] mobility: Partition suspend attempt 1 of 5 error: -11\n"
        "[ 2.1] mobility: Will retry partition suspend after 1 ms\n"
        "[ 3.0] mobility: Partition suspend attempt 5 of 5 error: -11\n"
        "[ 3.1] watchdog: Set the NMI watchdog timeout factor to 0%\n"
        "[ 9.0] watchdog: BUG: soft lockup - CPU#2 stuck for 22s! [x:3]\n"
    )
    tri = triage_text(log)
    assert [p.name for p in tri.phases] == ["before_suspend", "suspend", "after_abort"]
    assert tri.events[-1].phase == "after_abort"


def test_two_migrations() -> None:
    one = (
        "[ {a}.0] mobility: calling ibm,suspend-me on CPU 0\n"
        "[ {b}.0] mobility: CPU 0 waking all threads\n"
        "[ {c}.0] mobility: memory transfer completed.\n"
    )
    tri = triage_text(one.format(a=10, b=11, c=20) + one.format(a=100, b=101, c=120))
    assert [(p.migration, p.name) for p in tri.phases] == [
        (1, "before_suspend"),
        (1, "suspend"),
        (1, "transfer"),
        (1, "after_transfer"),
        (2, "suspend"),
        (2, "transfer"),
        (2, "after_transfer"),
    ]


CRASH_LOG = """\
[ 50.000000] mobility: CPU 8 waking all threads
[ 95.000000] watchdog: CPU 2 detected hard LOCKUP on other CPUs 8
[ 95.000010] watchdog: CPU 2 TB:1000, last SMP heartbeat TB:10 (45100ms ago)
[ 95.100000] watchdog: CPU 8 Hard LOCKUP
[ 95.100010] watchdog: CPU 8 TB:1000, last heartbeat TB:10 (45200ms ago)
[ 95.100020] CPU: 8 PID: 4711 Comm: drmgr Not tainted 5.14.21 #1
[ 95.100030] NIP:  000000001fb41050 LR: 000000001fb4104c CTR: 0000000000000000
[ 95.100040] NIP [000000001fb41050] 0x1fb41050
[ 95.200000] Oops: Unrecoverable System Reset, sig: 6 [#1]
[ 95.300000] Kernel panic - not syncing: Fatal exception
[ 95.400000] kexec: Starting switchover sequence.
"""


def test_crash_path_nmi_ipi_into_rtas() -> None:
    tri = triage_text(CRASH_LOG)
    types = [e.type for e in tri.events]
    assert types == ["lpm_phase", "hardlockup", "hardlockup", "unrecoverable_system_reset", "panic"]
    other, ipi = tri.events[1], tri.events[2]
    assert other.cpus == [8] and other.detected_by == 2 and other.duration_s == pytest.approx(45.1)
    assert ipi.task == "drmgr:4711" and ipi.stack == "rtas" and ipi.verdict == "consistent"
    assert tri.crash_path is not None
    for part in ("flagged CPU(s) 8", "RTAS", "MSR[RI]=0", "Unrecoverable System Reset", "kdump"):
        assert part in tri.crash_path
    assert "crash path:" in tri.events[-1].reason
    assert tri.events[3].verdict == "consistent"


@pytest.mark.parametrize(
    ("line", "quantity", "value"),
    [
        ("watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [a:1]", "stopper", 23 * 2**30 / 1e9),
        ("watchdog: CPU 3 detected hard LOCKUP on other CPUs 4", "timer interrupt", 15.0),
        ("rcu: INFO: rcu_sched self-detected stall on CPU\n\t(t=21000 jiffies g=1 q=2)", "grace", 21.0),
        ("INFO: task a:1 blocked for more than 480 seconds.", "not scheduled", 480.0),
        ("BUG: workqueue lockup - pool cpus=2 node=0 flags=0x0 nice=0 stuck for 31s!", "progress", 31.0),
        ("CPU 9 didn't respond to backtrace IPI, inspecting paca.", "IPI", 5.0),
    ],
)
def test_calibration_bounds(line: str, quantity: str, value: float) -> None:
    (b,) = bounds(triage_text(line + "\n"))
    assert quantity in b.quantity
    assert b.lower_bound == pytest.approx(value, rel=1e-3)
    assert b.unit == "s"


def test_calibration_uses_lpm_factor() -> None:
    log = "watchdog: Set the NMI watchdog timeout factor to 200%\nwatchdog: CPU 1 detected hard LOCKUP on other CPUs 2\n"
    (b,) = bounds(triage_text(log))
    assert b.lower_bound == pytest.approx(45.0)

"""``lpmsim.bugs.attribution`` on hand-made event lists: causes, panics' triggers, counts."""

from __future__ import annotations

from typing import Any

from lpmsim.bugs.attribution import BugRecord, attribute, classify

SPIN = BugRecord(index=0, kind="irqs_hard_off_spin", cpus=(5,), pids=(30000,), due_s=100.0, start_s=100.0)
HUNG = BugRecord(index=1, kind="d_state", cpus=(2,), pids=(30002,), due_s=50.0, start_s=50.0)


def ev(
    t: float, det: str, kind: str, cpus: list[int], line: str | None = None, by: int | None = 0
) -> dict[str, Any]:
    return {"time_s": t, "detector": det, "kind": kind, "cpus": cpus, "by": by, "line": line}


def test_cpu_and_task_rules() -> None:
    events = [
        ev(90.0, "rcu_stall", "smp-detected", [5]),  # before the bug started: the migration's
        ev(116.0, "hardlockup", "smp-detected", [3, 5]),  # names the bug's CPU
        ev(116.0, "nmi_ipi", "ipi-report", [3], by=3),
        ev(117.0, "hardlockup", "unstuck", [5], by=5),
        ev(180.0, "hung_task", "report", [2], "INFO: task bug/2:30002 blocked for more than 120 seconds."),
        ev(180.0, "hung_task", "report", [5], "INFO: task script/5:2005 blocked for more than 120 seconds."),
    ]
    assert classify(events, [SPIN, HUNG], None) == [
        "migration",
        "bug:0",
        "migration",
        "bug:0",
        "bug:1",
        "migration",  # a hung task on the spinning CPU is not the spin's
    ]


def test_summary_keys_counts_and_first_detection() -> None:
    events = [
        ev(95.0, "softlockup", "self-detected", [1]),
        ev(120.0, "hardlockup", "smp-detected", [5]),
        ev(121.0, "hardlockup", "unstuck", [5]),
        ev(122.02, "rcu_stall", "smp-detected", [5]),
    ]
    out = attribute(events, [SPIN, HUNG], None)
    assert [e["cause"] for e in out["events"]] == ["migration", "bug:0", "bug:0", "bug:0"]
    assert out["events"][0] == {**events[0], "cause": "migration"}
    assert out["reports"] == {
        "migration": {
            "hardlockup": 0,
            "softlockup": 1,
            "rcu_stall": 0,
            "workqueue_lockup": 0,
            "hung_task": 0,
        },
        "bug": {"hardlockup": 1, "softlockup": 0, "rcu_stall": 1, "workqueue_lockup": 0, "hung_task": 0},
    }
    spin, hung = out["bugs"]
    assert spin == {
        "index": 0,
        "kind": "irqs_hard_off_spin",
        "cpus": [5],
        "due_s": 100.0,
        "start_s": 100.0,
        "detected_by": "hardlockup",
        "detected_s": 120.0,
        "delay_s": 20.0,
        "missed": False,
        "status": "detected",
        "died_first": False,
    }
    assert hung["missed"] is True and hung["detected_by"] is None and hung["died_first"] is False


def test_panics_take_the_cause_of_their_trigger() -> None:
    # hardlockup_panic: nmi_panic() after the IPIs, on the reporting CPU 0 (not a bug CPU)
    events = [ev(120.0, "hardlockup", "smp-detected", [5]), ev(120.0, "panic", "panic", [0])]
    crash = {"time_s": 120.0, "cause": "hardlockup_panic", "cpu": 0}
    assert classify(events, [SPIN], crash) == ["bug:0", "bug:0"]
    # the same panic after a migration report
    events = [ev(120.0, "hardlockup", "smp-detected", [6]), ev(120.0, "panic", "panic", [0])]
    assert classify(events, [SPIN], crash) == ["migration", "migration"]
    # an unrecoverable system reset taken by the bug's CPU
    events = [ev(120.0, "nmi_ipi", "unrecoverable", [5], by=5), ev(120.0, "panic", "crash", [5], by=5)]
    crash = {"time_s": 120.0, "cause": "unrecoverable_system_reset", "cpu": 5}
    assert classify(events, [SPIN], crash) == ["bug:0", "bug:0"]
    # hung_task_panic: any bug's report of the scan
    events = [
        ev(240.0, "hung_task", "report", [4], "INFO: task script/4:2004 blocked for more than 120 seconds."),
        ev(240.0, "hung_task", "report", [2], "INFO: task bug/2:30002 blocked for more than 190 seconds."),
        ev(240.0, "panic", "panic", [0]),
    ]
    crash = {"time_s": 240.0, "cause": "hung_task_panic", "cpu": 0}
    out = attribute(events, [HUNG], crash)
    assert [e["cause"] for e in out["events"]] == ["migration", "bug:1", "bug:1"]
    assert out["bugs"][0]["detected_by"] == "hung_task"


def test_death_by_the_bug_without_a_report() -> None:
    events = [ev(240.0, "panic", "panic", [0])]
    crash = {"time_s": 240.0, "cause": "hung_task_panic", "cpu": 0}
    (b,) = attribute(events, [HUNG], crash)["bugs"]
    assert (b["detected_by"], b["delay_s"], b["missed"]) == ("panic", 190.0, False)


def test_not_started() -> None:
    late = BugRecord(
        index=0, kind="abba_deadlock", cpus=(1, 2), pids=(30000, 30001), due_s=None, start_s=None
    )
    (b,) = attribute([ev(10.0, "softlockup", "self-detected", [1])], [late], None)["bugs"]
    assert (b["status"], b["missed"], b["start_s"], b["died_first"]) == ("not_started", False, None, False)

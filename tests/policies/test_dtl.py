"""steal-aware and annotate: the dispatch trace log (kernel.dtl) and the detectors' judgement.

Scripted cases (tests/kernel/harness.py: not migrating, the scenario's ``script`` section, the policy
from ``mitigation.policy``) with the expected events computed by hand.  Facts used (defaults:
watchdog_thresh 10, HZ 100, TB 512 MHz, printk time = simulated time):

* heartbeat grid every 4 s; a CPU that stops beating just after the grid point 100 leaves the last
  complete round at 104 (CPU 0 empties pending there, the others clear theirs; the stopped CPU never
  does), so the SMP checker (15 s) first sees it at the heartbeat 120 (16 s after 104);
* soft-NMI: DEC entries every D = 0x7fffffff / 512e6 = 4.194303998 s; a DEC that expired while the vCPU was
  stalled is taken as soon as it runs again; local timeout 10 s since the CPU's last heartbeat (100);
* soft lockup: u(t) = floor(t / 1.073741824); u(100) = 93; report at a 4 s grid run with
  u(now) > u(report_ts) + 20, i.e. from 124 (u = 115) for report_ts = 100;
* RCU: the GP starts when the first CPU stops passing quiescent states; stall timeout 21 s; the CPU
  itself reports at jiffies_stall if it ticks, else CPU 0 two jiffies later;
* steal-aware: a check that would report CPU c is skipped while c's guest time in the detector's
  window, elapsed - S_c (S_c = time stalled in the hypervisor), is below the detector's timeout; the
  hard-lockup windows start at the CPU's last heartbeat (100 here), and the SMP checker takes an
  excused CPU out of the round (no IPI) and judges it again at every heartbeat;
* annotate: the same, and each excused episode prints
  ``<watchdog|rcu|workqueue>: CPU c: memory access stalled N s in the hypervisor``, N = int(S_c of the
  window), once per episode.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.harness import BASE, MIGRATION, Result, merge, run_case
from kernel.test_roundtrip import _check
from lpmsim.config.loader import build_scenario, load_scenario
from lpmsim.guest.cpustate import CpuStates
from lpmsim.kernel.dtl import Dtl
from lpmsim.kernel.model import hv_stall_line
from lpmsim.runner import simulate, summarise
from lpmsim.triage.analyze import triage_text
from lpmsim.triage.calibrate import bounds

INF = math.inf
POLICIES = ("none", "steal-aware", "annotate")
NO_RI0 = {"nmi_ri0_prob": {"kernel": 0, "preempt_off": 0, "irqs_soft_off": 0, "irqs_hard_off": 0, "rtas": 0}}
SELF3 = "watchdog: CPU 3 self-detected hard LOCKUP @ _raw_spin_lock_irqsave+0x80/0x110"

Ev = tuple[float, str, str, list[int], int | None, str | None]


def s(cpu: int, at: float, state: str, dur: float) -> dict[str, Any]:
    return {"cpu": cpu, "at_s": at, "state": state, "duration_s": dur}


def run(over: dict[str, Any], policy: str) -> Result:
    return run_case(merge(BASE, {**over, "mitigation": {"policy": policy}}))


def check(r: Result, want: list[Ev]) -> None:
    got = [e for e in r.summary["events"] if e["kind"] != "unstuck"]
    assert [(e["detector"], e["kind"], e["cpus"], e["by"], e["line"]) for e in got] == [
        (d, k, c, b, ln) for (_t, d, k, c, b, ln) in want
    ], "\n".join(f"{e['time_s']:.6f} {e['detector']} {e['kind']} {e['cpus']} {e['line']}" for e in got)
    for e, w in zip(got, want, strict=True):
        assert math.isclose(e["time_s"], w[0], abs_tol=2e-6), (e, w)


def hv(t: float, prefix: str, cpu: int, n: int, by: int) -> Ev:
    return (
        t,
        "hv_stall",
        "annotation",
        [cpu],
        by,
        f"{prefix}: CPU {cpu}: memory access stalled {n} s in the hypervisor",
    )


# -- a soft-masked section whose first 8 s are a hypervisor stall -----------------------------------------

# CPU 3: interrupts soft-disabled 100.5-114.5, stalled in the hypervisor 100.5-108.5.  A 60 s RCU
# stall timeout: RCU's resched IPI to the holdout comes at 100.5 + 30.01 (issue 13 s3), after the
# section; with 21 s it would come at 111.01 and hard-mask CPU 3 before any soft-NMI report.
SHORT = {
    "kernel": {"rcu_cpu_stall_timeout": 60},
    "sim": {"max_time_s": 130},
    "script": [s(3, 100.5, "irqs_soft_off", 14), s(3, 100.5, "stalled", 8)],
}


def test_soft_nmi_none_reports_at_the_kernel_time() -> None:
    # The DEC expired at 100.51 while stalled; entry at 108.5 (8.5 s since the heartbeat at 100 < 10),
    # re-armed with 0x7fffffff ticks: 108.5 + D = 112.694304 (12.69 s >= 10) -> self-detected; TB
    # 108.5 * 512e6 + 0x7fffffff = 57699483647, 12694 ms.  Interrupts back at 114.5: unstuck.
    r = run(SHORT, "none")
    check(r, [(112.694304, "hardlockup", "self-detected", [3], 3, SELF3)])
    assert "watchdog: CPU 3 TB:57699483647, last heartbeat TB:51200000000 (12694ms ago)" in r.lines
    assert "watchdog: CPU 3 became unstuck TB:58624000000" in r.lines


def test_soft_nmi_steal_aware_section_ends_first() -> None:
    # Entry 112.694304: guest time 12.694304 - 8 = 4.69 s < 10 -> excused; no entry can report before
    # 100 + 10 + 8 = 118: the next DEC entry at or after it is 112.694304 + 2 * D = 121.08, but
    # interrupts come back at 114.5 -> never reported, and nothing printed.
    r = run(SHORT, "steal-aware")
    check(r, [])
    assert not any("hypervisor" in ln or "LOCKUP" in ln for ln in r.lines)
    assert r.summary["watchdogs"]["hv_stall"] == {"reports": 0, "cpus": [], "first_s": None}


def test_soft_nmi_annotate_prints_the_steal() -> None:
    # As steal-aware; the excused entry at 112.694304 prints N = S_3 over [100, 112.69] = 8 s.
    r = run(SHORT, "annotate")
    check(r, [hv(112.694304, "watchdog", 3, 8, 3)])
    assert r.summary["watchdogs"]["hv_stall"] == {
        "reports": 1,
        "cpus": [3],
        "first_s": pytest.approx(112.694304),
    }
    assert r.summary["outcome"] == "survived"


# -- a real lockup (soft-masked for ever) that starts with an 8 s hypervisor stall ------------------------

# With the 21 s RCU timeout: RCU's resched IPI (first FQS pass after jiffies_resched, 100.5 + 10.51 =
# 111.01; issue 13 s3) hard-masks CPU 3 - running again since 108.5 - so the soft-NMI never reports
# (its entries: 108.5, 8.5 s < 10; the next, 112.69, does not come): the SMP checker does.
REAL = {
    "kernel": NO_RI0,
    "sim": {"max_time_s": 135},
    "script": [s(3, 100.5, "irqs_soft_off", INF), s(3, 100.5, "stalled", 8)],
}
RCU_OTHER = "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"
SMP3 = "watchdog: CPU 0 detected hard LOCKUP on other CPUs 3"


@pytest.mark.parametrize(
    ("policy", "want", "log"),
    [
        (
            # The kernel's times: CPU 3 hard-masked at 111.01; SMP checker: reset at 104, report at
            # 120 by CPU 0 (16 s >= 15), the NMI IPI taken at once; RCU: GP from 100.5 (jiffy
            # 10050), stall at 12150, CPU 3 does not tick -> CPU 0 at 12152 = 121.52.
            "none",
            [
                (120.0, "hardlockup", "smp-detected", [3], 0, SMP3),
                (120.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
                (121.52, "rcu_stall", "smp-detected", [3], 0, RCU_OTHER),
            ],
            ["watchdog: CPU 3 TB:61440000000, last heartbeat TB:51200000000 (20000ms ago)"],
        ),
        (
            # The SMP checker at 120 excuses CPU 3 (window [100, 120]: 20 - 8 s stalled = 12 < 15)
            # and judges it again at the next heartbeat: 124, 24 - 8 = 16 >= 15 -> reported, the
            # NMI IPI taken at once (TB 124 * 512e6 = 63488000000, 24000 ms since 100).
            # RCU: at 121.52 guest 21.02 - 8 = 13.02 < 21 -> excused, check pushed to when it can
            # reach 21 s: 100.5 + 21 + 8 = 129.5 -> CPU 0 reports it there.
            "steal-aware",
            [
                (124.0, "hardlockup", "smp-detected", [3], 0, SMP3),
                (124.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
                (129.5, "rcu_stall", "smp-detected", [3], 0, RCU_OTHER),
            ],
            ["watchdog: CPU 3 TB:63488000000, last heartbeat TB:51200000000 (24000ms ago)"],
        ),
        (
            # As steal-aware, plus one line per excused episode: the SMP checker's at 120 (N = 8,
            # printed by the checking CPU 0) and RCU's at 121.52 printed by CPU 0 (N = 8).
            "annotate",
            [
                hv(120.0, "watchdog", 3, 8, 0),
                hv(121.52, "rcu", 3, 8, 0),
                (124.0, "hardlockup", "smp-detected", [3], 0, SMP3),
                (124.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
                (129.5, "rcu_stall", "smp-detected", [3], 0, RCU_OTHER),
            ],
            [],
        ),
    ],
)
def test_real_lockup_after_a_stall(policy: str, want: list[Ev], log: list[str]) -> None:
    r = run(REAL, policy)
    check(r, want)
    assert all(ln in r.lines for ln in log)


# -- a hard-disabled spin: the SMP checker and the NMI IPI -------------------------------------------------

SMP_PANIC = "Kernel panic - not syncing: Hard LOCKUP"


@pytest.mark.parametrize("policy", POLICIES)
def test_pure_hard_spin_is_reported_and_panics_under_every_policy(policy: str) -> None:
    # CPU 5 hard-off from 101, never stalled: S_5 = 0, nothing to excuse.  SMP checker at 120 (16 s
    # since 104), the IPI is taken at once (CPU 5 Hard LOCKUP), hardlockup_panic=1 -> panic by CPU 0.
    over = {
        "kernel": {**NO_RI0, "hardlockup_panic": 1},
        "sim": {"max_time_s": 200},
        "script": [s(5, 101, "irqs_hard_off", INF)],
    }
    r = run(over, policy)
    check(
        r,
        [
            (
                120.0,
                "hardlockup",
                "smp-detected",
                [5],
                0,
                "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5",
            ),
            (120.0, "nmi_ipi", "ipi-report", [5], 5, "watchdog: CPU 5 Hard LOCKUP"),
            (120.0, "panic", "panic", [0], 0, SMP_PANIC),
        ],
    )
    crash = r.summary["crash"]
    assert r.summary["outcome"] == "panic"
    assert (crash["cause"], crash["cpu"], crash["time_s"]) == ("hardlockup_panic", 0, pytest.approx(120.0))


@pytest.mark.parametrize(
    ("policy", "at", "extra"),
    [
        # none: the kernel's time, 120 (the stall 101-111 is over: the IPI is taken at once).
        ("none", 120.0, []),
        # steal-aware: window since its heartbeat at 100, S_5 = 10 s.  120: 20 - 10 = 10 < 15 (excused:
        # out of the round, no IPI), judged at every heartbeat: 124: 14 < 15, 128: 18 >= 15 ->
        # reported 8 s late, then the panic.
        ("steal-aware", 128.0, []),
        # annotate: the SMP excuse at 120 prints N = 10 (by CPU 0); RCU (GP from 101, 12200 + 2 =
        # 122.02) excuses it too: 21.02 - 10 < 21, N = 10.
        ("annotate", 128.0, [hv(120.0, "watchdog", 5, 10, 0), hv(122.02, "rcu", 5, 10, 0)]),
    ],
)
def test_hard_spin_after_a_stall_panics_later_by_its_steal(policy: str, at: float, extra: list[Ev]) -> None:
    over = {
        "kernel": {**NO_RI0, "hardlockup_panic": 1},
        "sim": {"max_time_s": 200},
        "script": [s(5, 101, "irqs_hard_off", INF), s(5, 101, "stalled", 10)],
    }
    r = run(over, policy)
    check(
        r,
        [
            *extra,
            (
                at,
                "hardlockup",
                "smp-detected",
                [5],
                0,
                "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5",
            ),
            (at, "nmi_ipi", "ipi-report", [5], 5, "watchdog: CPU 5 Hard LOCKUP"),
            (at, "panic", "panic", [0], 0, SMP_PANIC),
        ],
    )
    assert r.summary["crash"]["time_s"] == pytest.approx(at)


# -- a 30 s hypervisor stall alone ---------------------------------------------------------------------------

STALL30 = {"kernel": NO_RI0, "sim": {"max_time_s": 150}, "script": [s(3, 100.5, "stalled", 30)]}


@pytest.mark.parametrize(
    ("policy", "want", "outcome"),
    [
        (
            # The LPM failure: the SMP checker flags CPU 3 at 120, its NMI IPI cannot be taken (stalled)
            # and times out at 121.1 (the udelay(1) loop: 1.1 s); RCU at 121.52; the system reset lands
            # at 130.5, after the sender gave
            # up: a dump request -> "System Reset" panic 2 s later.
            "none",
            [
                (
                    120.0,
                    "hardlockup",
                    "smp-detected",
                    [3],
                    0,
                    "watchdog: CPU 0 detected hard LOCKUP on other CPUs 3",
                ),
                (121.1, "nmi_ipi", "timeout", [3], 0, None),
                (121.52, "rcu_stall", "smp-detected", [3], 0, RCU_OTHER),
                (130.5, "nmi_ipi", "dump", [3], 3, "Oops: System Reset, sig: 6 [#1]"),
                (132.5, "panic", "panic", [3], 3, "Kernel panic - not syncing: System Reset"),
            ],
            "crash",  # the NMI IPI was not answered in time: a crash, no *_panic sysctl asked for it
        ),
        # Guest time 0 in every window: nothing reported, nothing printed.
        ("steal-aware", [], "survived"),
        (
            # SMP at 120: N = S_3 over [100, 120] = 19.5 -> 19; RCU at 121.52: N = int(21.02) = 21; soft
            # lockup, late timer run at 130.5 (u = 121 > 93 + 20): N = S_3 over [100, 130.5] = 30.
            "annotate",
            [hv(120.0, "watchdog", 3, 19, 0), hv(121.52, "rcu", 3, 21, 0), hv(130.5, "watchdog", 3, 30, 3)],
            "survived",
        ),
    ],
)
def test_stall_alone(policy: str, want: list[Ev], outcome: str) -> None:
    r = run(STALL30, policy)
    check(r, want)
    assert r.summary["outcome"] == outcome


@pytest.mark.parametrize(("policy", "at"), [("none", 144.0), ("steal-aware", 140.0)])
def test_an_excused_cpu_does_not_blind_the_smp_checker(policy: str, at: float) -> None:
    # CPU 3 stalled 100.5-160.5 (steal-aware: excused at 120 and taken out of the round, which resets
    # there); CPU 5 spins hard-off from 121.  The next round starts at 124 and stays open on CPU 5; at
    # 140 (16 s after 124) CPU 0 flags it — the kernel's time for it.  (Were CPU 3 left pending, no
    # round would complete before 160.5 and CPU 5 would go unchecked.)  Under none CPU 3 is flagged
    # stuck at 120 instead, with the same effect on the rounds - but CPU 0 also reports CPU 3's RCU
    # stall at 121.52 and waits 5 s for its backtrace IPI: its heartbeat due at 124 runs at 126.52,
    # where the round starts; 15 s later is 141.52, first heartbeat after it 144.
    over = {
        "kernel": NO_RI0,
        "sim": {"max_time_s": 150},
        "script": [s(3, 100.5, "stalled", 60), s(5, 121, "irqs_hard_off", INF)],
    }
    r = run(over, policy)
    got = [(e["time_s"], e["detector"], e["kind"], e["cpus"]) for e in r.summary["events"] if 5 in e["cpus"]]
    assert got == [(at, "hardlockup", "smp-detected", [5]), (at, "nmi_ipi", "ipi-report", [5])]


# -- preempt-off with a stall: the soft-lockup detector and a self-detected RCU stall --------------------------


@pytest.mark.parametrize(
    ("policy", "want"),
    [
        (
            # CPU 2 preempt-off 100.5-140.5, stalled 100.5-115.5 (it ticks from 115.5).  RCU: GP 100.5,
            # CPU 2 reports itself at jiffy 12150 = 121.5, and touches its own watchdogs doing so
            # (print_cpu_stall_info -> touch_nmi_watchdog).  Soft lockup: report_ts = 100, first run
            # with u > 113 would be 124 (u = 115), but the touch makes that run re-base report_ts to
            # 124; the next report would need u > 135 (148), after preempt-off ends: none.
            "none",
            [
                (
                    121.5,
                    "rcu_stall",
                    "self-detected",
                    [2],
                    2,
                    "rcu: INFO: rcu_sched self-detected stall on CPU",
                ),
            ],
        ),
        (
            # RCU: 121.5: guest 21 - 15 = 6 < 21 -> pushed to 100.5 + 21 + 15 = 136.5, where CPU 0's
            # check wins the jiffy (the model's lowest-CPU-first tie rule) -> detected by CPU 0.
            # Soft lockup: u(t - 15) > 113 needs t - 15 >= 114 * 1.073741824 = 122.41: the first grid
            # run at or after 137.41 is 140 (u(125) = 116 > 113): stuck for u(140) - 93 = 37 s.
            "steal-aware",
            [
                (136.5, "rcu_stall", "smp-detected", [2], 0, RCU_OTHER),
                (
                    140.0,
                    "softlockup",
                    "self-detected",
                    [2],
                    2,
                    "watchdog: BUG: soft lockup - CPU#2 stuck for 37s! [script/2:1002]",
                ),
            ],
        ),
        (
            # As steal-aware with the two excuses printed: RCU's (self check by CPU 2) at 121.5, the soft
            # lockup's at 124, both N = 15.
            "annotate",
            [
                hv(121.5, "rcu", 2, 15, 2),
                hv(124.0, "watchdog", 2, 15, 2),
                (136.5, "rcu_stall", "smp-detected", [2], 0, RCU_OTHER),
                (
                    140.0,
                    "softlockup",
                    "self-detected",
                    [2],
                    2,
                    "watchdog: BUG: soft lockup - CPU#2 stuck for 37s! [script/2:1002]",
                ),
            ],
        ),
    ],
)
def test_preempt_off_with_a_stall(policy: str, want: list[Ev]) -> None:
    over = {
        "sim": {"max_time_s": 150},
        "script": [s(2, 100.5, "preempt_off", 40), s(2, 100.5, "stalled", 15)],
    }
    check(run(over, policy), want)


# -- the workqueue watchdog -------------------------------------------------------------------------------------


def wq(t: float, secs: int) -> Ev:
    line = f"BUG: workqueue lockup - pool cpus=4 node=0 flags=0x0 nice=0 stuck for {secs}s!"
    return (t, "workqueue_lockup", "lockup", [4], 0, line)


@pytest.mark.parametrize(
    ("policy", "want"),
    [
        # CPU 4 preempt-off from 100.5 for ever, stalled 100.5-140.5.  The watchdog runs at 30.08 k
        # (3000 jiffies on the 64-jiffy wheel level): 150.40 is the first run with now > max(pool_ts
        # 100.5, previous run 120.32) + 30: stuck for (15040 - 10050) / 100 = 49 s; again at 180.48
        # (> 150.40 + 30): 79 s.  (The hard-lockup, soft-lockup and RCU detectors are off here.)
        ("none", [wq(150.4, 49), wq(180.48, 79)]),
        # Guest time since the pool stopped: 150.40: 49.9 - 40 = 9.9 s < 30 -> excused; 180.48:
        # 79.98 - 40 = 39.98 >= 30 -> reported (stuck for 79 s).
        ("steal-aware", [wq(180.48, 79)]),
        # N = S_4 over [100.5, 150.4] = 40, printed by CPU 0 (the watchdog timer's CPU).
        ("annotate", [hv(150.4, "workqueue", 4, 40, 0), wq(180.48, 79)]),
    ],
)
def test_workqueue_pool_of_a_stalled_cpu(policy: str, want: list[Ev]) -> None:
    over = {
        "kernel": {"nmi_watchdog": 0, "soft_watchdog": 0, "rcu_cpu_stall_suppress": 1},
        "sim": {"max_time_s": 190},
        "script": [s(4, 100.5, "preempt_off", INF), s(4, 100.5, "stalled", 40)],
    }
    r = run(over, policy)
    check(r, want)
    assert [e for e in r.summary["events"] if e["detector"] not in ("workqueue_lockup", "hv_stall")] == []


# -- combination, round trip, the runner's paths --------------------------------------------------------------


def test_steal_aware_plus_annotate_is_annotate() -> None:
    a = run(SHORT, "steal-aware+annotate")
    assert a.summary["events"] == run(SHORT, "annotate").summary["events"]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("over", [SHORT, REAL, STALL30], ids=["short", "real", "stall30"])
def test_scripted_logs_round_trip(over: dict[str, Any], policy: str) -> None:
    st_ = simulate(build_scenario(merge(BASE, {**over, "mitigation": {"policy": policy}})))
    assert st_.kernel is not None
    _check(summarise(st_, 0.0), st_.kernel.model.log.lines())


def test_fluid_migration_annotate_round_trips_and_replaces_reports() -> None:
    # A 20 Mb/s link, fluid mode: with `none` the post-resume RTAS call (stalled at each fault) gets an
    # SMP hard-lockup report and an RCU stall; with annotate each is a hypervisor stall (published
    # episodes carry their stall share to the DTL through CpuStates.steal_frac).  (Before the fluid
    # mode published episodes one stall at a time, `none` died here: an artefact, docs/model/
    # agreement.md fix 6; exact survives too.)
    ov = [
        "platform.link_gbps=0.02",
        "migration.resume_missing_fraction=0.3",
        "sim.max_time_s=3000",
        "sim.mode=fluid",
    ]
    none = simulate(load_scenario(preset="small", overrides=[*ov, "mitigation.policy=none"], seed=1))
    wd = summarise(none, 0.0)["watchdogs"]
    assert wd["hardlockup"]["reports"] >= 1 and wd["rcu_stall"]["reports"] >= 1
    st_ = simulate(load_scenario(preset="small", overrides=[*ov, "mitigation.policy=annotate"], seed=1))
    s_ = summarise(st_, 0.0)
    assert st_.kernel is not None and st_.kernel.model.dtl is not None
    assert s_["outcome"] == "survived"
    assert s_["watchdogs"]["hv_stall"]["reports"] > 0
    assert s_["watchdogs"]["hardlockup"]["reports"] == s_["watchdogs"]["rcu_stall"]["reports"] == 0
    _check(s_, st_.kernel.model.log.lines())
    assert st_.cpus is not None and all(c.steal_frac == 0.0 for c in st_.cpus.cpus)  # unpublished at the end


def test_migrating_runner_builds_the_policy() -> None:
    st_ = simulate(build_scenario(merge(MIGRATION, {"mitigation": {"policy": "steal-aware"}})))
    assert st_.kernel is not None
    m = st_.kernel.model
    assert m.dtl is not None and m.dtl_mode == "steal-aware"
    # the suspend: every vCPU stalled from suspend_s to its wake-up after resume_s
    lpm = summarise(st_, 0.0)["lpm"]
    assert m.dtl.steal(0, lpm["resume_s"] + 1) >= lpm["resume_s"] - lpm["suspend_s"] - 1e-9


def test_no_dtl_without_the_policies() -> None:
    r = run(SHORT, "none")
    assert "hv_stall" not in r.summary["watchdogs"]


def test_hv_stall_line_format() -> None:
    assert (
        hv_stall_line("watchdog", 5, 12.9) == "watchdog: CPU 5: memory access stalled 12 s in the hypervisor"
    )
    assert hv_stall_line("rcu", 5, 25.0) == "rcu: CPU 5: memory access stalled 25 s in the hypervisor"


# -- the DTL itself ------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


# a timeline of one vCPU: (time step, stalled, steal_frac) applied in order
STEPS = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=50.0, allow_nan=False),
        st.booleans(),
        st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0]),
    ),
    max_size=40,
)


def _drive(steps: list[tuple[float, bool, float]], t0: float) -> tuple[Dtl, list[tuple[float, float]], float]:
    """Run the steps; return the DTL, the (time, rate) changes in force and the end time."""
    clock = Clock()
    clock.t = t0
    states = CpuStates(2, clock)
    dtl = Dtl(states, t0)
    rates: list[tuple[float, float]] = [(t0, 0.0)]
    for dt, stalled, frac in steps:
        clock.t += dt
        states.set_stalled(0, stalled)
        states.set_steal_frac(0, frac)
        states.set_ctx(1, states.cpus[1].ctx)  # noise on another vCPU
        rates.append((clock.t, 1.0 if stalled else frac))
    return dtl, rates, clock.t + 10.0


def _integral(rates: list[tuple[float, float]], t: float) -> float:
    """Brute force: the integral of the rate in force (the last one set at each instant) up to t."""
    total = 0.0
    for (a, r), (b, _) in zip(rates, [*rates[1:], (math.inf, 0.0)], strict=True):
        if a >= t:
            break
        total += r * (min(b, t) - a)
    return total


@settings(max_examples=200, deadline=None)
@given(
    STEPS,
    st.floats(min_value=0.0, max_value=1000.0, allow_nan=False),
    st.lists(st.floats(0.0, 1.0), max_size=20),
)
def test_dtl_steal_clock(steps: list[tuple[float, bool, float]], t0: float, fracs: list[float]) -> None:
    dtl, rates, end = _drive(steps, t0)
    qs = sorted({t0, end, *(t0 + f * (end - t0) for f in fracs), *(r[0] for r in rates)})
    prev = 0.0
    for q in qs:
        sq = dtl.steal(0, q)
        assert sq >= prev - 1e-9  # monotone
        assert sq <= (q - t0) + 1e-9  # never more than the elapsed time
        assert sq == pytest.approx(_integral(rates, q), abs=1e-6)  # = the stalled intervals (and shares)
        assert dtl.steal(1, q) == 0.0  # the other vCPU never stalled
        prev = sq
    for a, b in itertools.pairwise(qs):
        w = dtl.window(0, a, b)
        assert -1e-9 <= w <= (b - a) + 1e-9
        assert dtl.guest(0, a, b) == pytest.approx((b - a) - w, abs=1e-9)
    assert dtl.steal(0, t0 - 5.0) == 0.0  # before enabling
    assert dtl.transitions(0) <= len(steps)  # memory: one breakpoint per rate change at most


def test_dtl_stalled_intervals_sum() -> None:
    clock = Clock()
    states = CpuStates(1, clock)
    dtl = Dtl(states, 0.0)
    for a, b in [(1.0, 3.0), (5.0, 5.5), (10.0, 20.0)]:
        clock.t = a
        states.set_stalled(0, True)
        clock.t = b
        states.set_stalled(0, False)
    assert dtl.steal(0, 25.0) == pytest.approx(2.0 + 0.5 + 10.0)
    assert dtl.steal(0, 12.0) == pytest.approx(2.5 + 2.0)  # inside a stall: counted up to the query
    assert dtl.window(0, 2.0, 11.0) == pytest.approx(1.0 + 0.5 + 1.0)
    assert dtl.transitions(0) == 6
    # a fractional share (fluid mode): a quarter of 8 s
    clock.t = 30.0
    states.set_steal_frac(0, 0.25)
    clock.t = 38.0
    states.set_steal_frac(0, 0.0)
    assert dtl.window(0, 25.0, 40.0) == pytest.approx(2.0)
    # reach: from 40 on at rate 0, 5 s of guest time since 38 are there at 43
    assert dtl.reach(0, 38.0, 40.0, 5.0) == pytest.approx(43.0)
    states.set_stalled(0, True)
    assert dtl.reach(0, 38.0, 40.0, 5.0) == math.inf


def test_enable_dtl_rejects_unknown_modes() -> None:
    r = simulate(build_scenario(merge(BASE, {**SHORT, "mitigation": {"policy": "none"}})))
    assert r.kernel is not None
    with pytest.raises(ValueError, match="unknown DTL mode"):
        r.kernel.model.enable_dtl("nope")


# -- triage of the annotation lines ------------------------------------------------------------------------------


def test_triage_reads_annotations() -> None:
    log = "\n".join(
        [
            "[  120.000000] watchdog: CPU 3: memory access stalled 16 s in the hypervisor",
            "[  121.520000] rcu: CPU 3: memory access stalled 21 s in the hypervisor",
            "[  150.400000] workqueue: CPU 4: memory access stalled 40 s in the hypervisor",
            "[  160.000000] watchdog: CPU 0 detected hard LOCKUP on other CPUs 5",
            "[  160.000000] Kernel panic - not syncing: Hard LOCKUP",
        ]
    )
    tri = triage_text(log + "\n")
    hvs = [e for e in tri.events if e.type == "hv_stall"]
    assert [(e.time_s, e.cpus, e.duration_s, e.variant) for e in hvs] == [
        (120.0, [3], 16.0, "watchdog"),
        (121.52, [3], 21.0, "rcu"),
        (150.4, [4], 40.0, "workqueue"),
    ]
    assert all(e.verdict == "consistent" for e in hvs)
    assert [e.type for e in tri.events if e.type != "hv_stall"] == ["hardlockup", "panic"]
    assert tri.crash_path is not None and "memory access" not in tri.crash_path
    b = [x for x in bounds(tri) if x.type == "hv_stall"]
    assert [(x.cpus, x.lower_bound) for x in b] == [([3], 16.0), ([3], 21.0), ([4], 40.0)]

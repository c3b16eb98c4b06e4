"""The scripted kernel cases, each with its expected reports computed by hand from the kernel's rules.

Common facts used in the hand computations (defaults: watchdog_thresh 10, HZ 100, 512 MHz TB):

* hrtimer grid (heartbeat and soft-lockup sampler): every P = 10*2/5 = 4 s from t=0 (or from the
  last lockup_detector_reconfigure()).  After a (re)start pending = {0}; at each grid point CPU 0
  beats first, empties pending and resets it (last_reset = that grid point), the others clear
  theirs: in a healthy system pending = {0} and last_reset = the last grid point.
* hard-lockup: local timeout 10 s (30 s with factor 200), SMP timeout 15 s (45 s).
  soft-NMI: first entry on the next 10 ms tick after interrupts go off, then every
  0x7fffffff/512e6 = 4.194303998 s (re-arm with the local timeout only if < 0x7fffffff ticks).
* TB = t * 512e6; "ms ago" = floor(dTB * 1000 / 512e6).
* soft lockup: units u(t) = floor(t / 1.073741824); report at a run with u(now) > u(report_ts) + 20.
  u(100) = 93, u(120) = 111, u(124) = 115, u(148) = 137, u(172) = 160.
* RCU: timeout 21 s = 2100 jiffies; gp_start = jiffy of the first CPU to stop passing quiescent
  states; self-detected at jiffies_stall, other CPU at jiffies_stall + 2; re-warn 3*2100+3 later.
* workqueue watchdog (CPU 0): runs at 30.08 s and every 30.08 s after (3000 jiffies rounded up to
  the 64-jiffy wheel granularity); a pool is reported when now > max(pool_ts, previous run) + 30 s.
* khungtaskd scans at 120, 240, 360, ... s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .harness import BASE, MIGRATION, merge

INF = math.inf


def s(cpu: int, at: float, state: str, dur: float) -> dict[str, Any]:
    return {"cpu": cpu, "at_s": at, "state": state, "duration_s": dur}


@dataclass
class Case:
    id: str
    over: dict[str, Any]
    detectors: set[str]
    expect: list[tuple[float, str, str, list[int], int | None, str | None]]
    outcome: str = "survived"
    crash: tuple[float, str, int] | None = None
    log: list[str] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    nmi: tuple[int, int, int] | None = None
    base: dict[str, Any] = field(default_factory=lambda: BASE)

    def data(self) -> dict[str, Any]:
        return merge(self.base, self.over)


NO_RI0 = {"nmi_ri0_prob": {"kernel": 0, "preempt_off": 0, "irqs_soft_off": 0, "irqs_hard_off": 0, "rtas": 0}}
# A plain 50 s RTAS call (no firmware-memory stalls from the guest model: exact durations).
RTAS50 = {
    "post_mobility_rtas": [{"name": "ibm,update-nodes", "count": 1, "median_s": 50, "sigma": 0}],
    "rtas_touches_memory": False,
}
HL = {"hardlockup", "nmi_ipi"}
# RCU stall warnings off: the RCU report of a preempt-off CPU (self-detected at 21 s) calls
# touch_nmi_watchdog() on it (print_cpu_stall_info), which re-bases its soft-lockup and workqueue
# stamps; cases about those detectors alone switch RCU warnings off (cases_rcu.py has the touch).
NO_RCU = {"rcu_cpu_stall_suppress": 1}

# One case per line group; the table is kept as written (hand computations next to each case).
# fmt: off
CASES: list[Case] = [
    # ---------------------------------------------------------------- hard lockup: soft-NMI self-detection
    Case(
        # CPU 3 soft-masks at 100.5 for ever.  Last heartbeat at grid 100.  DEC entries at 100.51 +
        # k*4.194304: 100.51, 104.70, 108.90 (8.90 s < 10), then 113.092912 (13.09 >= 10) would
        # report - but MOVED (issue 13 s3, the kernel's own IPIs): CPU 3 cannot schedule, so the RCU
        # GP that starts at 100.5 has it as holdout; jiffies_resched = gp_start + 2100/2, and the
        # first FQS pass after it (every jiffy at HZ=100, 8 CPUs) at gp_start + 1051 jiffies =
        # 111.01 sends resched_cpu()/irq_work IPIs through the interrupt controller: an external
        # interrupt, which hard-masks soft-masked CPU 3.  No DEC entry after 111.01, so no
        # self-detection; the SMP checker reports it at 120 as in cases_masking.py
        # (masking_irq_before_soft_nmi): reset at 104, 120 - 104 >= 15; NMI IPI taken at once.  RI=0
        # off (NO_RI0) so the IPI's outcome is hand-computable; window to 121 to show it.
        "self_soft_off_thresh10",
        {"kernel": NO_RI0, "sim": {"max_time_s": 121}, "script": [s(3, 100.5, "irqs_soft_off", INF)]},
        HL,
        [
            (120.0, "hardlockup", "smp-detected", [3], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 3"),
            (120.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
        ],
        log=["watchdog: CPU 3 TB:61440000000, last heartbeat TB:51200000000 (20000ms ago)"],
        nmi=(1, 0, 0),
    ),
    Case(
        # As above, interrupts back at 115.5.  MOVED (issue 13 s3): the RCU resched IPI at 111.01
        # hard-masks CPU 3 before the DEC entry of 113.09, so no self-detection and the CPU is never
        # marked stuck (no "became unstuck"); back at 115.5 it runs the missed heartbeat at once and
        # clears its pending bit before the SMP checker's 120 (104 + 16 >= 15): nothing reported.
        "self_then_unstuck",
        {"sim": {"max_time_s": 130}, "script": [s(3, 100.5, "irqs_soft_off", 15)]},
        HL,
        [],
        nmi=(0, 0, 0),
    ),
    Case(
        # 9 s soft-masked: entries at 100.51, 104.70, 108.90: at most 8.9 s since the heartbeat at
        # 100 -> nothing; interrupts back at 109.5 < 100 + 15 -> no SMP report either.
        "soft_off_9s_silent",
        {"sim": {"max_time_s": 140}, "script": [s(3, 100.5, "irqs_soft_off", 9)]},
        HL,
        [],
    ),
    Case(
        # watchdog_thresh 20: P = 8 s, last heartbeat 96; local timeout 20 s -> the entry with
        # e - 96 >= 20 would be 100.51 + 4*4.194304 = 117.287216.  MOVED (issue 13 s3): the RCU
        # resched IPI at 100.5 + 10.51 = 111.01 hard-masks CPU 2 first (entries up to 108.90: 12.9 s
        # < 20).  SMP checker (timeout 20*3/2 = 30 s): at 104 CPU 0 empties pending -> reset(104),
        # CPU 2 never clears again; first heartbeat with now - 104 >= 30: 136 (grid 104 + 8k).
        # NMI IPI taken at once: TB 136*512e6 = 69632000000, last heartbeat 96 -> 40000 ms.
        "self_thresh20",
        {"kernel": {"watchdog_thresh": 20, **NO_RI0}, "sim": {"max_time_s": 137}, "script": [s(2, 100.5, "irqs_soft_off", INF)]},
        HL,
        [
            (136.0, "hardlockup", "smp-detected", [2], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 2"),
            (136.0, "nmi_ipi", "ipi-report", [2], 2, "watchdog: CPU 2 Hard LOCKUP"),
        ],
        log=[
            "watchdog: CPU 0 TB:69632000000, last SMP heartbeat TB:53248000000 (32000ms ago)",
            "watchdog: CPU 2 TB:69632000000, last heartbeat TB:49152000000 (40000ms ago)",
        ],
        nmi=(1, 0, 0),
    ),
    Case(
        # watchdog_thresh 3: P = 1.2 s (last heartbeat 49.2), local 3 s = 1.536e9 ticks < 0x7fffffff,
        # so DEC is re-armed with 3 s: entries 50.06 (0.86 s), 53.06 (3.86 s) -> report, 3860 ms.
        "self_thresh3_rearm_timeout",
        {"kernel": {"watchdog_thresh": 3}, "sim": {"max_time_s": 54}, "script": [s(1, 50.05, "irqs_soft_off", INF)]},
        HL,
        [(53.06, "hardlockup", "self-detected", [1], 1, "watchdog: CPU 1 self-detected hard LOCKUP @ _raw_spin_lock_irqsave+0x80/0x110")],
        log=["watchdog: CPU 1 TB:27166720000, last heartbeat TB:25190400000 (3860ms ago)"],
    ),
    Case(
        # Factor 200 set at 50 (reconfigure: grid 54, 58, 62, ...).  CPU 3 soft-masked at 60.5, last
        # heartbeat 58; local 30 s: the DEC entry 60.51 + 7*4.194304 = 89.870128 would report.
        # MOVED (issue 13 s3): the RCU GP starting at 60.5 sends its resched IPI at 60.5 + 10.51 =
        # 71.01, which hard-masks CPU 3 (entries up to 68.90: 10.9 s < 30).  SMP checker, timeout
        # 30*3/2 = 45 s: reset at 62 (CPU 0 empties pending), CPU 3 never clears again; first grid
        # with now - 62 >= 45: 110 (62 + 12*4).  NMI IPI at once: TB 110*512e6, last 58 -> 52000 ms.
        # (The RCU report at 81.52 keeps CPU 0 busy until 86.52: it misses 82 and 86, runs late.)
        "self_factor200",
        {"kernel": NO_RI0, "sim": {"max_time_s": 111}, "script": [s(3, 60.5, "irqs_soft_off", INF)]},
        HL,
        [
            (110.0, "hardlockup", "smp-detected", [3], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 3"),
            (110.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
        ],
        log=[
            "watchdog: Set the NMI watchdog timeout factor to 200%",
            "watchdog: CPU 0 TB:56320000000, last SMP heartbeat TB:31744000000 (48000ms ago)",
            "watchdog: CPU 3 TB:56320000000, last heartbeat TB:29696000000 (52000ms ago)",
        ],
        calls=[(50.0, "factor", 200)],
        nmi=(1, 0, 0),
    ),
    Case(
        # Factor 200 at 50, back to 0 at 70: the restart re-seeds the heartbeat stamps and the SMP
        # reset (70) and the timeout is 10 s again.  The DEC (phase 60.51 + k*4.194304) would report
        # at 81.481520 - MOVED (issue 13 s3): the resched IPI at 71.01 hard-masks CPU 3 first (the
        # entry at 68.90 ran under the 30 s timeout).  SMP checker (15 s): pending {3} from 74 on;
        # 82 - 70 = 12 < 15, 86 - 70 = 16 -> report at 86.  Not by CPU 0: its RCU report of the GP
        # started at 60.5 (at 60.5 + 21.02 = 81.52) waits 5 s for CPU 3's backtrace IPI, so CPU 0 is
        # busy 81.52-86.52 and CPU 1 beats first at 86.  TB 86*512e6, last 70 -> 16000 ms.
        "self_factor_cleared",
        {"kernel": NO_RI0, "sim": {"max_time_s": 95}, "script": [s(3, 60.5, "irqs_soft_off", INF)]},
        HL,
        [
            (86.0, "hardlockup", "smp-detected", [3], 1, "watchdog: CPU 1 detected hard LOCKUP on other CPUs 3"),
            (86.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
        ],
        log=[
            "watchdog: Set the NMI watchdog timeout factor to 200%",
            "watchdog: Set the NMI watchdog timeout factor to 0%",
            "watchdog: CPU 1 TB:44032000000, last SMP heartbeat TB:35840000000 (16000ms ago)",
            "watchdog: CPU 3 TB:44032000000, last heartbeat TB:35840000000 (16000ms ago)",
        ],
        calls=[(50.0, "factor", 200), (70.0, "factor", 0)],
        nmi=(1, 0, 0),
    ),
    Case(
        # hardlockup_panic=1.  MOVED (issue 13 s3): no self-detection at 113.092912 (the RCU resched
        # IPI hard-masks CPU 3 at 111.01, as in self_soft_off_thresh10); the SMP checker reports it
        # at 120, sends the NMI IPI (taken at once) and then panics "Hard LOCKUP" on CPU 0
        # (watchdog_smp_panic: nmi_panic after the IPIs).
        "self_hardlockup_panic",
        {"kernel": {"hardlockup_panic": 1, **NO_RI0}, "sim": {"max_time_s": 200}, "script": [s(3, 100.5, "irqs_soft_off", INF)]},
        HL | {"panic"},
        [
            (120.0, "hardlockup", "smp-detected", [3], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 3"),
            (120.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
            (120.0, "panic", "panic", [0], 0, "Kernel panic - not syncing: Hard LOCKUP"),
        ],
        outcome="panic",
        crash=(120.0, "hardlockup_panic", 0),
        nmi=(1, 0, 0),
    ),
    # ---------------------------------------------------------------- hard lockup: SMP checker + NMI IPI
    Case(
        # CPU 5 hard-off at 101.  At 104 CPU 0 empties pending {0} -> reset(104), pending = all,
        # everyone but 5 clears -> {0,5}; 108: {5}.  First grid with now - 104 >= 15: 120 (16 s):
        # CPU 0 reports 5 and IPIs it; 5 is running (not stalled): takes it at once.
        "smp_hard_off_ipi_answered",
        {"kernel": NO_RI0, "sim": {"max_time_s": 121}, "script": [s(5, 101, "irqs_hard_off", INF)]},
        HL,
        [
            (120.0, "hardlockup", "smp-detected", [5], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5"),
            (120.0, "nmi_ipi", "ipi-report", [5], 5, "watchdog: CPU 5 Hard LOCKUP"),
        ],
        log=[
            "watchdog: CPU 0 TB:61440000000, last SMP heartbeat TB:53248000000 (16000ms ago)",
            "watchdog: CPU 5 TB:61440000000, last heartbeat TB:51200000000 (20000ms ago)",
        ],
        nmi=(1, 0, 0),
    ),
    Case(
        # CPU 0 itself hard-off at 101: it is the CPU pending since the reset at 100, so CPU 1 (the
        # first healthy CPU) reports it at 116 (16 s after 100), 4 s earlier than any other CPU.
        "smp_cpu0_detected_by_cpu1",
        {"kernel": NO_RI0, "sim": {"max_time_s": 117}, "script": [s(0, 101, "irqs_hard_off", INF)]},
        HL,
        [
            (116.0, "hardlockup", "smp-detected", [0], 1, "watchdog: CPU 1 detected hard LOCKUP on other CPUs 0"),
            (116.0, "nmi_ipi", "ipi-report", [0], 0, "watchdog: CPU 0 Hard LOCKUP"),
        ],
        log=["watchdog: CPU 0 TB:59392000000, last heartbeat TB:51200000000 (16000ms ago)"],
    ),
    Case(
        # CPU 5 stalled in the hypervisor for ever: reported at 120, the NMI IPI times out at 121.1
        # (1000000 iterations of udelay(1) + 100 ns of loop overhead each: 1.1 s).
        "smp_ipi_never_answered",
        {"sim": {"max_time_s": 121.5}, "script": [s(5, 101, "stalled", INF)]},
        HL,
        [
            (120.0, "hardlockup", "smp-detected", [5], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5"),
            (121.1, "nmi_ipi", "timeout", [5], 0, None),
        ],
        nmi=(1, 1, 0),
    ),
    Case(
        # Stalled until 121.5: the IPI sent at 120 timed out at 121.1; the reset is delivered at
        # 121.5, no longer pending -> dump request: Oops at 121.5, panic "System Reset" 2 s later.
        "smp_ipi_late_dump",
        {"sim": {"max_time_s": 200}, "script": [s(5, 101, "stalled", 20.5)]},
        HL | {"panic"},
        [
            (120.0, "hardlockup", "smp-detected", [5], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5"),
            (121.1, "nmi_ipi", "timeout", [5], 0, None),
            (121.5, "nmi_ipi", "dump", [5], 5, "Oops: System Reset, sig: 6 [#1]"),
            (123.5, "panic", "panic", [5], 5, "Kernel panic - not syncing: System Reset"),
        ],
        outcome="crash",
        crash=(123.5, "system_reset_dump", 5),
        nmi=(1, 1, 0),
    ),
    Case(
        # Stalled until 120.5 (< 120 + 1 s): the IPI is taken at 120.5 (20500 ms since the
        # heartbeat at 100), then the missed heartbeat runs: "became unstuck".
        "smp_ipi_answered_within_1s",
        {"kernel": NO_RI0, "sim": {"max_time_s": 122}, "script": [s(5, 101, "stalled", 19.5)]},
        HL,
        [
            (120.0, "hardlockup", "smp-detected", [5], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5"),
            (120.5, "nmi_ipi", "ipi-report", [5], 5, "watchdog: CPU 5 Hard LOCKUP"),
            (120.5, "hardlockup", "unstuck", [5], 5, "watchdog: CPU 5 became unstuck TB:61696000000"),
        ],
        log=["watchdog: CPU 5 TB:61696000000, last heartbeat TB:51200000000 (20500ms ago)"],
        nmi=(1, 0, 0),
    ),
    Case(
        # As smp_hard_off_ipi_answered with RI=0 certain in irqs_hard_off code: the Hard LOCKUP lines,
        # then "Oops: Unrecoverable System Reset, sig: 6 [#1]": crash.
        "smp_ipi_ri0_unrecoverable",
        {"kernel": {"nmi_ri0_prob": {"irqs_hard_off": 1}}, "sim": {"max_time_s": 200}, "script": [s(5, 101, "irqs_hard_off", INF)]},
        HL | {"panic"},
        [
            (120.0, "hardlockup", "smp-detected", [5], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5"),
            (120.0, "nmi_ipi", "ipi-report", [5], 5, "watchdog: CPU 5 Hard LOCKUP"),
            (120.0, "nmi_ipi", "unrecoverable", [5], 5, "Oops: Unrecoverable System Reset, sig: 6 [#1]"),
            (120.0, "panic", "crash", [5], 5, "Oops: Unrecoverable System Reset, sig: 6 [#1]"),
        ],
        outcome="crash",
        crash=(120.0, "unrecoverable_system_reset", 5),
        nmi=(1, 0, 1),
    ),
    Case(
        # pre-v6.0 kernels enter RTAS with MSR[RI]=0: an RTAS call on CPU 5 from 101 is hit at 120.
        "smp_ipi_in_rtas_pre_v6",
        {"kernel": {"version": "pre-v6.0"}, "sim": {"max_time_s": 200}, "script": [s(5, 101, "rtas_call", 30)]},
        HL | {"panic"},
        [
            (120.0, "hardlockup", "smp-detected", [5], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5"),
            (120.0, "nmi_ipi", "ipi-report", [5], 5, "watchdog: CPU 5 Hard LOCKUP"),
            (120.0, "nmi_ipi", "unrecoverable", [5], 5, "Oops: Unrecoverable System Reset, sig: 6 [#1]"),
            (120.0, "panic", "crash", [5], 5, "Oops: Unrecoverable System Reset, sig: 6 [#1]"),
        ],
        outcome="crash",
        crash=(120.0, "unrecoverable_system_reset", 5),
    ),
    Case(
        # v6.6 enters RTAS with RI=1 (RTAS-internal RI=0 windows: probability 0 here): survives;
        # the call ends at 131 -> unstuck.
        "smp_ipi_in_rtas_v66",
        {"kernel": NO_RI0, "sim": {"max_time_s": 132}, "script": [s(5, 101, "rtas_call", 30)]},
        HL,
        [
            (120.0, "hardlockup", "smp-detected", [5], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5"),
            (120.0, "nmi_ipi", "ipi-report", [5], 5, "watchdog: CPU 5 Hard LOCKUP"),
            (131.0, "hardlockup", "unstuck", [5], 5, "watchdog: CPU 5 became unstuck TB:67072000000"),
        ],
    ),
    Case(
        # hardlockup_panic=1: after the IPI at 120, CPU 0 calls nmi_panic(NULL, "Hard LOCKUP").
        "smp_hardlockup_panic",
        {"kernel": {**NO_RI0, "hardlockup_panic": 1}, "sim": {"max_time_s": 200}, "script": [s(5, 101, "irqs_hard_off", INF)]},
        HL | {"panic"},
        [
            (120.0, "hardlockup", "smp-detected", [5], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5"),
            (120.0, "nmi_ipi", "ipi-report", [5], 5, "watchdog: CPU 5 Hard LOCKUP"),
            (120.0, "panic", "panic", [0], 0, "Kernel panic - not syncing: Hard LOCKUP"),
        ],
        outcome="panic",
        crash=(120.0, "hardlockup_panic", 0),
    ),
    Case(
        # hardlockup_all_cpu_backtrace=1: no NMI IPI, an all-but-self backtrace instead.
        "smp_all_cpu_backtrace",
        {"kernel": {"hardlockup_all_cpu_backtrace": 1}, "sim": {"max_time_s": 121}, "script": [s(5, 101, "irqs_hard_off", INF)]},
        HL,
        [(120.0, "hardlockup", "smp-detected", [5], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5")],
        log=["Sending NMI from CPU 0 to CPUs 1-7:"],
        nmi=(0, 0, 0),
    ),
    Case(
        # kernel.nmi_watchdog=0: the powerpc detector is off; nothing from it.
        "nmi_watchdog_off",
        {"kernel": {"nmi_watchdog": 0}, "sim": {"max_time_s": 140}, "script": [s(5, 101, "irqs_hard_off", INF), s(3, 100.5, "irqs_soft_off", INF)]},
        HL,
        [],
        nmi=(0, 0, 0),
    ),
    Case(
        # touch_nmi_watchdog() on CPU 5 at 110 (hard-off since 101; 10 s >= 4 s since its heartbeat
        # at 100): wd_timer_tb = 110, its pending bit clears and empties pending -> reset at 110.
        # Then 112 refills {5}; first grid with now - 110 >= 15 would be 128, but the RCU stall (GP
        # from jiffy 10100) is reported by CPU 0 at 12202 (122.02) and its backtrace IPI to CPU 5 times
        # out after 5 s: CPU 0 spins hard-disabled until 127.02, where its late heartbeat (due 124)
        # finds 127.02 - 110 = 17.02 >= 15 -> CPU 0 reports CPU 5 then (17020 ms).
        "touch_delays_smp",
        {"kernel": NO_RI0, "sim": {"max_time_s": 129}, "script": [s(5, 101, "irqs_hard_off", INF)]},
        HL,
        [
            (127.02, "hardlockup", "smp-detected", [5], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5"),
            (127.02, "nmi_ipi", "ipi-report", [5], 5, "watchdog: CPU 5 Hard LOCKUP"),
        ],
        log=["watchdog: CPU 0 TB:65034240000, last SMP heartbeat TB:56320000000 (17020ms ago)", "watchdog: CPU 5 TB:65034240000, last heartbeat TB:56320000000 (17020ms ago)"],
        calls=[(110.0, "touch_nmi_watchdog", 5)],
    ),
    Case(
        # 28 vCPUs, CPUs 1-24 stalled from 101: CPU 0 reports 1-24 at 120 and IPIs them one after
        # another, 1.1 s each (the udelay(1) loop), all time out: it spins hard-disabled 120 ->
        # 146.4.  Its soft-lockup timer (due 124) runs late at 146.4: touch_ts 120 (u 111),
        # u(146.4) = 136 > 131 -> "stuck for 25s".  Meanwhile CPU 25 finds the SMP timeout passed
        # (136, 140, 144) but cannot report: CPU 0 holds the reporting flag; the RCU stall (GP from
        # 101) is reported at 122.02 by CPU 25, between the timeouts at 121.1 and 122.2.
        "sequential_ipis_sender_misses_heartbeats",
        {"partition": {"vcpus": 28}, "sim": {"max_time_s": 147}, "script": [s(c, 101, "stalled", INF) for c in range(1, 25)]},
        HL | {"softlockup", "rcu_stall"},
        [(120.0, "hardlockup", "smp-detected", list(range(1, 25)), 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 1-24")]
        + [(121.1, "nmi_ipi", "timeout", [1], 0, None)]
        + [(122.02, "rcu_stall", "smp-detected", list(range(1, 25)), 25, "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:")]
        + [(120.0 + 1.1 * (i + 1), "nmi_ipi", "timeout", [1 + i], 0, None) for i in range(1, 24)]
        + [(146.4, "softlockup", "self-detected", [0], 0, "watchdog: BUG: soft lockup - CPU#0 stuck for 25s! [swapper/0:0]")],
        nmi=(24, 24, 0),
    ),
    # ---------------------------------------------------------------- soft lockup
    Case(
        # CPU 4 preempt-off at 100.5 (timer interrupts still taken; the stopper cannot run).  Last
        # stopper run 100 (u 93).  First grid with u > 113: 124 (u 115) -> stuck for 22s.
        "soft_first_report",
        {"kernel": NO_RCU, "sim": {"max_time_s": 125}, "script": [s(4, 100.5, "preempt_off", INF)]},
        {"softlockup"},
        [(124.0, "softlockup", "self-detected", [4], 4, "watchdog: BUG: soft lockup - CPU#4 stuck for 22s! [script/4:1004]")],
    ),
    Case(
        # Re-report: report_ts = 124 (u 115) -> next run with u > 135: 148 (u 137, 44s); then u > 157:
        # 172 (u 160, 67s).
        "soft_rereport",
        {"kernel": NO_RCU, "sim": {"max_time_s": 175}, "script": [s(4, 100.5, "preempt_off", INF)]},
        {"softlockup"},
        [
            (124.0, "softlockup", "self-detected", [4], 4, "watchdog: BUG: soft lockup - CPU#4 stuck for 22s! [script/4:1004]"),
            (148.0, "softlockup", "rewarn", [4], 4, "watchdog: BUG: soft lockup - CPU#4 stuck for 44s! [script/4:1004]"),
            (172.0, "softlockup", "rewarn", [4], 4, "watchdog: BUG: soft lockup - CPU#4 stuck for 67s! [script/4:1004]"),
        ],
    ),
    Case(
        # 21 s preempt-off (to 121.5): runs at 104..120 see u <= 111 <= 113 -> no report (the 4 s
        # sampling and 1.07 s units make the first report come after ~21.5-27 s).
        "soft_21s_silent",
        {"sim": {"max_time_s": 130}, "script": [s(4, 100.5, "preempt_off", 21)]},
        {"softlockup"},
        [],
    ),
    Case(
        # Soft-masked 100.5 -> 125.5: no timer runs; the missed run is delivered when interrupts
        # come back: u(125.5) = 116 > 113 -> stuck for 23s, at 125.5.
        "soft_reported_when_irqs_back",
        {"sim": {"max_time_s": 130}, "script": [s(4, 100.5, "irqs_soft_off", 25)]},
        {"softlockup"},
        [(125.5, "softlockup", "self-detected", [4], 4, "watchdog: BUG: soft lockup - CPU#4 stuck for 23s! [script/4:1004]")],
    ),
    Case(
        # softlockup_panic=1 -> panic("softlockup: hung tasks") at the first report.
        "soft_panic",
        {"kernel": {"softlockup_panic": 1, **NO_RCU}, "sim": {"max_time_s": 200}, "script": [s(4, 100.5, "preempt_off", INF)]},
        {"softlockup", "panic"},
        [
            (124.0, "softlockup", "self-detected", [4], 4, "watchdog: BUG: soft lockup - CPU#4 stuck for 22s! [script/4:1004]"),
            (124.0, "panic", "panic", [4], 4, "Kernel panic - not syncing: softlockup: hung tasks"),
        ],
        outcome="panic",
        crash=(124.0, "softlockup_panic", 4),
    ),
    Case(
        # touch_softlockup_watchdog() (via touch_nmi_watchdog) at 110: the run at 112 only re-bases
        # report_ts to 112 (u 104); next report when u > 124: 136 (u 126) -> stuck for 33s (touch_ts
        # is untouched: 126 - 93).
        "soft_touch_rebases",
        {"kernel": NO_RCU, "sim": {"max_time_s": 140}, "script": [s(4, 100.5, "preempt_off", INF)]},
        {"softlockup"},
        [(136.0, "softlockup", "self-detected", [4], 4, "watchdog: BUG: soft lockup - CPU#4 stuck for 33s! [script/4:1004]")],
        calls=[(110.0, "touch_nmi_watchdog", 4)],
    ),
    Case(
        # Hard-disabled 100.5 -> 140 (e.g. stop_machine + blackout): the missed sampler run comes at
        # 140 with touch_ts 100 (u 93): u(140) = 130 > 113 -> stuck for 37s.
        "soft_irqs_back_without_touch",
        {"sim": {"max_time_s": 145}, "script": [s(4, 100.5, "irqs_hard_off", 39.5)]},
        {"softlockup"},
        [(140.0, "softlockup", "self-detected", [4], 4, "watchdog: BUG: soft lockup - CPU#4 stuck for 37s! [script/4:1004]")],
    ),
    Case(
        # The same with touch_nmi_watchdog() on CPU 4 at 139.9 (what do_join does after resume): the
        # run at 140 only re-bases report_ts, the stopper then runs: no report.
        "soft_irqs_back_after_touch",
        {"sim": {"max_time_s": 170}, "script": [s(4, 100.5, "irqs_hard_off", 39.5)]},
        {"softlockup"},
        [],
        calls=[(139.9, "touch_nmi_watchdog", 4)],
    ),
    Case(
        # watchdog_thresh=0 disables both lockup detectors (RCU still reports).
        "thresh0_disables",
        {"kernel": {"watchdog_thresh": 0}, "sim": {"max_time_s": 125}, "script": [s(4, 100.5, "preempt_off", INF), s(5, 101, "irqs_hard_off", INF)]},
        HL | {"softlockup"},
        [],
    ),
    # ---------------------------------------------------------------- RCU
    Case(
        # CPU 3 hard-off at 100.5: GP from jiffy 10050, jiffies_stall 12150; CPU 3 takes no ticks:
        # CPU 0 reports at 12152 (121.52), t=2102, g=10005 (1 mod 4 during a GP); its backtrace IPI to
        # CPU 3 times out at 126.52 (jiffy 12652).  Re-warn: 12652 + 6303 = 18955 -> CPU 0 at 18957.
        "rcu_other_cpu_and_rewarn",
        {"sim": {"max_time_s": 190}, "script": [s(3, 100.5, "irqs_hard_off", INF)]},
        {"rcu_stall"},
        [
            (121.52, "rcu_stall", "smp-detected", [3], 0, "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"),
            (189.57, "rcu_stall", "rewarn", [3], 0, "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"),
        ],
        log=["rcu: \t(detected by 0, t=2102 jiffies, g=10005, q=0 ncpus=8)"],
    ),
    Case(
        # CPU 4 preempt-off: it takes ticks and still owes a QS -> self-detected at jiffies_stall
        # 12150 (121.50), t=2100; re-warns at 18453 and 24756.
        "rcu_self_detected_rewarn",
        {"sim": {"max_time_s": 250}, "script": [s(4, 100.5, "preempt_off", INF)]},
        {"rcu_stall"},
        [
            (121.50, "rcu_stall", "self-detected", [4], 4, "rcu: INFO: rcu_sched self-detected stall on CPU"),
            (184.53, "rcu_stall", "rewarn", [4], 4, "rcu: INFO: rcu_sched self-detected stall on CPU"),
            (247.56, "rcu_stall", "rewarn", [4], 4, "rcu: INFO: rcu_sched self-detected stall on CPU"),
        ],
        log=["rcu: \t(t=2100 jiffies g=10005 q=0 ncpus=8)"],
    ),
    Case(
        # SUSE timeout 60 s: jiffies_stall 10050 + 6000 -> CPU 0 at 16052.
        "rcu_sles_timeout60",
        {"kernel": {"preset": "sles"}, "sim": {"max_time_s": 170}, "script": [s(3, 100.5, "irqs_hard_off", INF)]},
        {"rcu_stall"},
        [(160.52, "rcu_stall", "smp-detected", [3], 0, "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:")],
    ),
    Case(
        # panic_on_rcu_stall=1: panic("RCU Stall\n") after the first report, on the reporting CPU, once
        # the report is over: its backtrace IPI to CPU 3 times out 5 s later (126.52).
        "rcu_panic",
        {"kernel": {"panic_on_rcu_stall": 1}, "sim": {"max_time_s": 200}, "script": [s(3, 100.5, "irqs_hard_off", INF)]},
        {"rcu_stall", "panic"},
        [
            (121.52, "rcu_stall", "smp-detected", [3], 0, "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"),
            (126.52, "panic", "panic", [0], 0, "Kernel panic - not syncing: RCU Stall"),
        ],
        outcome="panic",
        crash=(126.52, "rcu_stall_panic", 0),
    ),
    Case(
        # max_rcu_stall_to_panic=2: the first stall only counts (1 < 2); the re-warn (189.57, as in
        # rcu_other_cpu_and_rewarn) panics at the end of its report, 5 s later.
        "rcu_panic_second_stall",
        {"kernel": {"panic_on_rcu_stall": 1, "max_rcu_stall_to_panic": 2}, "sim": {"max_time_s": 300}, "script": [s(3, 100.5, "irqs_hard_off", INF)]},
        {"rcu_stall", "panic"},
        [
            (121.52, "rcu_stall", "smp-detected", [3], 0, "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"),
            (189.57, "rcu_stall", "rewarn", [3], 0, "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"),
            (194.57, "panic", "panic", [0], 0, "Kernel panic - not syncing: RCU Stall"),
        ],
        outcome="panic",
        crash=(194.57, "rcu_stall_panic", 0),
    ),
    Case(
        # Old rcu_cpu_stall_reset() (before v5.15: 5.14) at 20 during a GP stalled by CPU 2 since
        # 10.5: warnings are suppressed for the rest of that GP -> none (the self-detect would have
        # come at 31.50).
        "rcu_reset_old_suppresses",
        {"kernel": {"version": "5.14"}, "sim": {"max_time_s": 100}, "script": [s(2, 10.5, "preempt_off", INF)]},
        {"rcu_stall"},
        [],
        calls=[(20.0, "rcu_cpu_stall_reset")],
    ),
    Case(
        # a80be428fbc1 (v5.15-6.6.2; here v6.0): the reset at 20 (jiffy 2000, not stale: no
        # suspend) sets jiffies_stall = 2000 + 2100 = 4100 -> self-detected at 41.00, t = 4100 -
        # 1050 = 3050 jiffies; v6.0 prints the trailer with pr_cont (no "rcu: ") and ncpus= (v5.19+).
        "rcu_reset_timeout_rearms_at_once",
        {"kernel": {"version": "6.0"}, "sim": {"max_time_s": 60}, "script": [s(2, 10.5, "preempt_off", INF)]},
        {"rcu_stall"},
        [(41.0, "rcu_stall", "self-detected", [2], 2, "rcu: INFO: rcu_sched self-detected stall on CPU")],
        log=["\t(t=3050 jiffies g=10005 q=0 ncpus=8)"],
        calls=[(20.0, "rcu_cpu_stall_reset")],
    ),
    Case(
        # New reset (v6.6) at 20 (jiffy 2000): checks wait for the 3rd FQS pass (1 jiffy apart with 8
        # CPUs: 2003), which sets jiffies_stall = 2003 + 2100 = 4103 -> self-detected at 41.03,
        # t = 4103 - 1050 = 3053 jiffies.
        "rcu_reset_new_rearms",
        {"kernel": {"version": "v6.6"}, "sim": {"max_time_s": 60}, "script": [s(2, 10.5, "preempt_off", INF)]},
        {"rcu_stall"},
        [(41.03, "rcu_stall", "self-detected", [2], 2, "rcu: INFO: rcu_sched self-detected stall on CPU")],
        log=["rcu: \t(t=3053 jiffies g=10005 q=0 ncpus=8)"],
        calls=[(20.0, "rcu_cpu_stall_reset")],
    ),
    Case(
        # Without a reset: self-detected at 1050 + 2100 = 3150 (31.50).
        "rcu_no_reset",
        {"sim": {"max_time_s": 60}, "script": [s(2, 10.5, "preempt_off", INF)]},
        {"rcu_stall"},
        [(31.50, "rcu_stall", "self-detected", [2], 2, "rcu: INFO: rcu_sched self-detected stall on CPU")],
    ),
    # ---------------------------------------------------------------- workqueue
    Case(
        # CPU 3 cannot schedule from 100.5 (pool_ts 100.5): runs at 120.32 (ts = max(100.5, 90.24):
        # 12032 <= 13050) and 150.40 (ts = max(100.5, 120.32) = 120.32: 15040 > 15032) -> stuck for
        # (15040 - 10050)/100 = 49s; again at 180.48 (79s).
        "wq_lockup",
        {"kernel": NO_RCU, "sim": {"max_time_s": 190}, "script": [s(3, 100.5, "preempt_off", INF)]},
        {"workqueue_lockup"},
        [
            (150.40, "workqueue_lockup", "lockup", [3], 0, "BUG: workqueue lockup - pool cpus=3 node=0 flags=0x0 nice=0 stuck for 49s!"),
            (180.48, "workqueue_lockup", "lockup", [3], 0, "BUG: workqueue lockup - pool cpus=3 node=0 flags=0x0 nice=0 stuck for 79s!"),
        ],
    ),
    Case(
        # Stuck at 121.0, just after the run at 120.32: 150.40 sees 15040 <= 12100 + 3000; 180.48 sees
        # ts = 150.40: 18048 > 18040 -> stuck for 59s (the 30-60 s window).
        "wq_lockup_late_in_period",
        {"sim": {"max_time_s": 190}, "script": [s(3, 121.0, "preempt_off", INF)]},
        {"workqueue_lockup"},
        [(180.48, "workqueue_lockup", "lockup", [3], 0, "BUG: workqueue lockup - pool cpus=3 node=0 flags=0x0 nice=0 stuck for 59s!")],
    ),
    Case(
        # workqueue.panic_on_stall=1: BUG at the first detection -> Fatal exception in interrupt.
        "wq_panic_on_stall",
        {"kernel": {"wq_panic_on_stall": 1, **NO_RCU}, "sim": {"max_time_s": 200}, "script": [s(3, 100.5, "preempt_off", INF)]},
        {"workqueue_lockup", "panic"},
        [
            (150.40, "workqueue_lockup", "lockup", [3], 0, "BUG: workqueue lockup - pool cpus=3 node=0 flags=0x0 nice=0 stuck for 49s!"),
            (150.40, "panic", "panic", [0], 0, "Kernel panic - not syncing: Fatal exception in interrupt"),
        ],
        outcome="panic",
        crash=(150.40, "workqueue_panic", 0),
        log=["kernel BUG at kernel/workqueue.c:7530!", "Oops: Exception in kernel mode, sig: 5 [#1]"],
    ),
    # ---------------------------------------------------------------- hung task
    Case(
        # D state from 100.5: first seen by the scan at 120 (last_switch_time = 120), hung at 240
        # (139.5 s after blocking: between 1x and 2x 120 s); re-reported at 360.
        "hung_task_1x_2x",
        {"sim": {"max_time_s": 370}, "script": [s(2, 100.5, "d_state", INF)]},
        {"hung_task"},
        [
            (240.0, "hung_task", "report", [2], 0, "INFO: task script/2:2002 blocked for more than 120 seconds."),
            (360.0, "hung_task", "report", [2], 0, "INFO: task script/2:2002 blocked for more than 240 seconds."),
        ],
    ),
    Case(
        # Blocked at 119.5: seen at 120 -> reported at 240, only 120.5 s after blocking (~1x).
        "hung_task_just_before_scan",
        {"sim": {"max_time_s": 250}, "script": [s(2, 119.5, "d_state", INF)]},
        {"hung_task"},
        [(240.0, "hung_task", "report", [2], 0, "INFO: task script/2:2002 blocked for more than 120 seconds.")],
    ),
    Case(
        # Blocked at 120.5: first seen at 240 -> reported at 360, 239.5 s after blocking (~2x).
        "hung_task_just_after_scan",
        {"sim": {"max_time_s": 370}, "script": [s(2, 120.5, "d_state", INF)]},
        {"hung_task"},
        [(360.0, "hung_task", "report", [2], 0, "INFO: task script/2:2002 blocked for more than 120 seconds.")],
    ),
    Case(
        # hung_task_warnings=1: the budget allows one report only.
        "hung_task_warnings_budget",
        {"kernel": {"hung_task_warnings": 1}, "sim": {"max_time_s": 500}, "script": [s(2, 100.5, "d_state", INF)]},
        {"hung_task"},
        [(240.0, "hung_task", "report", [2], 0, "INFO: task script/2:2002 blocked for more than 120 seconds.")],
    ),
    Case(
        # hung_task_panic=1: panic("hung_task: blocked tasks") after the scan that found it.
        "hung_task_panic",
        {"kernel": {"hung_task_panic": 1}, "sim": {"max_time_s": 500}, "script": [s(2, 100.5, "d_state", INF)]},
        {"hung_task", "panic"},
        [
            (240.0, "hung_task", "report", [2], 0, "INFO: task script/2:2002 blocked for more than 120 seconds."),
            (240.0, "panic", "panic", [0], 0, "Kernel panic - not syncing: hung_task: blocked tasks"),
        ],
        outcome="panic",
        crash=(240.0, "hung_task_panic", 0),
    ),
    Case(
        # SUSE hung_task_timeout_secs 480: scans at 480, 960 -> reported at 960.
        "hung_task_sles_480",
        {"kernel": {"preset": "sles"}, "sim": {"max_time_s": 970}, "script": [s(2, 100.5, "d_state", INF)]},
        {"hung_task"},
        [(960.0, "hung_task", "report", [2], 0, "INFO: task script/2:2002 blocked for more than 480 seconds.")],
    ),
    # ---------------------------------------------------------------- the LPM flow (tiny migration)
    Case(
        # SUSPENDING (~0.24 s) seen by the poll at 1.04 (ssleep(1) from t=0: 101 jiffies, rounded
        # up to the timer wheel's 8-jiffy level: jiffy 104): factor 200 set; stop_machine,
        # suspend-me on CPU 3; resume 1.29; H_PRODs 5 us apart -> stop_machine ends at 1.290015; no
        # RTAS calls; "waiting" at 1.290015: COMPLETED (1.29055) seen by the poll after msleep(500)
        # (51 jiffies from jiffy 129: 1.80), then the factor goes back to 0.  Nothing reported.
        "lpm_flow_factor_set_and_cleared",
        {"kernel": {"post_mobility_rtas": []}},
        HL | {"softlockup", "rcu_stall", "workqueue_lockup", "hung_task"},
        [],
        log=[
            "watchdog: Set the NMI watchdog timeout factor to 200%",
            "mobility: calling ibm,suspend-me on CPU 3",
            "mobility: CPU 3 waking all threads",
            "mobility: waiting for memory transfer to complete...",
            "mobility: memory transfer completed.",
            "watchdog: Set the NMI watchdog timeout factor to 0%",
        ],
        base=MIGRATION,
    ),
    Case(
        # An RTAS call of 50 s starts at resume (1.290015) on CPU 0 under the factor (local 30,
        # SMP 45 s): the restart at 1.04 left pending = {0}, last_reset 1.04; CPU 0 never beats, so
        # CPU 1 reports it at the first grid point (1.04 + 4k) with now - 1.04 >= 45: 49.04
        # (48000 ms).  The IPI lands in RTAS (RI=1 on v6.6, RTAS-internal RI=0 probability 0 here):
        # answered.  RCU: GP from jiffy 129 -> CPU 1 at 2231.  RTAS returns at 51.290015 -> unstuck
        # (TB 51.290015*512e6).  The touch at resume (soft-lockup marker) keeps the soft-lockup
        # detector quiet for CPU 0.
        "lpm_rtas_50s_after_resume",
        {"kernel": {**RTAS50, **NO_RI0}},
        HL | {"softlockup", "rcu_stall", "workqueue_lockup"},
        [
            (22.31, "rcu_stall", "smp-detected", [0], 1, "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"),
            (49.04, "hardlockup", "smp-detected", [0], 1, "watchdog: CPU 1 detected hard LOCKUP on other CPUs 0"),
            (49.04, "nmi_ipi", "ipi-report", [0], 0, "watchdog: CPU 0 Hard LOCKUP"),
            (51.290015, "hardlockup", "unstuck", [0], 0, "watchdog: CPU 0 became unstuck TB:26260487680"),
        ],
        log=["watchdog: CPU 1 TB:25108480000, last SMP heartbeat TB:532480000 (48000ms ago)"],
        base=MIGRATION,
    ),
    Case(
        # Self-detection under the LPM factor during a real flow: factor set at 1.04 (grid 5.04, 9.04,
        # ...), the 50 s RTAS call keeps it until 51.290015.  CPU 3 soft-masked at 10.5, last heartbeat
        # 9.04, local 30 s: 10.51 + 7*4.194304 = 39.870128 >= 39.04 (TB 20413505529, 30830 ms).  The
        # SMP checker at 49.04 reports CPU 0 only (CPU 3 is already stuck and out of pending); CPU 3
        # stays silent after.
        "lpm_self_detect_under_factor",
        {"kernel": {**RTAS50, **NO_RI0}, "script": [s(3, 10.5, "irqs_soft_off", INF)]},
        HL,
        [
            (39.870128, "hardlockup", "self-detected", [3], 3, "watchdog: CPU 3 self-detected hard LOCKUP @ _raw_spin_lock_irqsave+0x80/0x110"),
            (49.04, "hardlockup", "smp-detected", [0], 1, "watchdog: CPU 1 detected hard LOCKUP on other CPUs 0"),
            (49.04, "nmi_ipi", "ipi-report", [0], 0, "watchdog: CPU 0 Hard LOCKUP"),
            (51.290015, "hardlockup", "unstuck", [0], 0, "watchdog: CPU 0 became unstuck TB:26260487680"),
        ],
        log=["watchdog: CPU 3 TB:20413505529, last heartbeat TB:4628480000 (30830ms ago)"],
        base=MIGRATION,
    ),
    Case(
        # Same on a pre-v6.0 kernel: no factor (10/15 s, grid from 0), RTAS entered with RI=0.
        # pending = {0} with last_reset 0: CPU 1 reports CPU 0 at 16 (16000 ms, as in the SLES 15 SP4
        # log of b6b1c3ce06ca: 15980 ms) and the reset lands in RTAS: unrecoverable.
        "lpm_rtas_50s_pre_v6",
        {"kernel": {**RTAS50, "version": "pre-v6.0"}},
        HL | {"panic"},
        [
            (16.0, "hardlockup", "smp-detected", [0], 1, "watchdog: CPU 1 detected hard LOCKUP on other CPUs 0"),
            (16.0, "nmi_ipi", "ipi-report", [0], 0, "watchdog: CPU 0 Hard LOCKUP"),
            (16.0, "nmi_ipi", "unrecoverable", [0], 0, "Oops: Unrecoverable System Reset, sig: 6 [#1]"),
            (16.0, "panic", "crash", [0], 0, "Oops: Unrecoverable System Reset, sig: 6 [#1]"),
        ],
        outcome="crash",
        crash=(16.0, "unrecoverable_system_reset", 0),
        log=["mobility: calling ibm,suspend-me on CPU 3", "watchdog: CPU 0 TB:8192000000, last heartbeat TB:0 (16000ms ago)"],
        base=MIGRATION,
    ),
    Case(
        # pre-v6.0 flow: no factor, no completion wait: only the suspend lines.
        "lpm_flow_pre_v6",
        {"kernel": {"post_mobility_rtas": [], "version": "pre-v6.0"}},
        HL | {"softlockup", "rcu_stall"},
        [],
        log=["mobility: calling ibm,suspend-me on CPU 3", "mobility: CPU 3 waking all threads"],
        base=MIGRATION,
    ),
]
# fmt: on


def _topic_cases() -> list[Case]:
    """Cases of one topic live in ``cases_<topic>.py`` next to this file, each with its own ``CASES``."""
    import importlib
    from pathlib import Path

    out: list[Case] = []
    for path in sorted(Path(__file__).parent.glob("cases_*.py")):
        out.extend(importlib.import_module(f"{__package__}.{path.stem}").CASES)
    return out


CASES += _topic_cases()

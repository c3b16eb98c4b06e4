"""Hand-computed cases: per-CPU states compose (issue 13, section 6; ``lpmsim.guest.cpustate``).

A stall is held by a set of owners (stalled while any holds), a context by holders over the
workload's (the most restrictive held).  Each case below differs from a case of ``cases.py`` only
by a second reason or holder that, before states composed, ended or relaxed the first one early;
its expected reports are that case's (the computation is repeated in the comment).
"""

from __future__ import annotations

from .cases import HL, INF, NO_RI0, Case, s
from .harness import MIGRATION

# fmt: off
CASES: list[Case] = [
    Case(
        # Two scripted stalls of CPU 5 overlap: 101-111 and 105-120.5, stalled 101-120.5 as one.
        # As smp_ipi_answered_within_1s: at 104 CPU 0 empties pending {0} -> reset(104), pending =
        # all, everyone but 5 clears; first grid with now - 104 >= 15: 120, CPU 0 reports 5 and
        # IPIs it; the IPI is taken when the stall ends at 120.5 (< 121), then the missed
        # heartbeat: "became unstuck".  (A boolean stall ended at 111 with the first entry: 111 -
        # 104 < 15, no report.)
        "compose_overlapping_stalls",
        {"kernel": NO_RI0, "sim": {"max_time_s": 122}, "script": [s(5, 101, "stalled", 10), s(5, 105, "stalled", 15.5)]},
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
        # CPU 5 hard-off from 101 for ever; a preempt_off section 103-108 inside it does not relax
        # it (the most restrictive hold): as smp_hard_off_ipi_answered, reset at 104, pending {0,5},
        # 108: {5}; CPU 0 reports 5 at 120 (16 s) and 5, running, takes the IPI at once.  (Before:
        # CPU 5 took the 104 heartbeat in preempt_off, and the report came at 124.)
        "compose_hard_off_holds_over_preempt_off",
        {"kernel": NO_RI0, "sim": {"max_time_s": 121}, "script": [s(5, 101, "irqs_hard_off", INF), s(5, 103, "preempt_off", 5)]},
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
        # A scripted 40 s stall of CPU 2 that starts inside the suspend (1.0-1.25; pre-v6.0 flow:
        # no factor, so the 4 s heartbeat grid from 0 is never restarted, and no RTAS call).  The
        # resume ends the suspend's stall only: CPU 2 stays stalled until 41.1.  CPU 2's last
        # heartbeat: 0 (the resume's touch_nmi_watchdog needs 4 s since it: 1.25 < 4, none).  At 4
        # CPU 0 empties pending {0} -> reset(4), all but 2 clear -> {0,2}; 8: {2}.  First grid with
        # now - 4 >= 15: 20, CPU 0 reports 2; the IPI times out at 21.1 (the 1 s udelay(1) loop at
        # 100 ns overhead a pass: 1.1 s, cases_masking.py); the system reset is taken
        # when the stall ends at 41.1 (no longer pending: a dump request), panic 2 s later.  (A
        # boolean stall ended at the resume, 1.25: no report.)
        "compose_scripted_stall_through_the_suspend",
        {
            "kernel": {"post_mobility_rtas": [], "version": "pre-v6.0", "tail_s": 60},
            "sim": {"max_time_s": 60},
            "script": [s(2, 1.1, "stalled", 40)],
        },
        HL | {"panic"},
        [
            (20.0, "hardlockup", "smp-detected", [2], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 2"),
            (21.1, "nmi_ipi", "timeout", [2], 0, None),
            (41.1, "nmi_ipi", "dump", [2], 2, "Oops: System Reset, sig: 6 [#1]"),
            (43.1, "panic", "panic", [2], 2, "Kernel panic - not syncing: System Reset"),
        ],
        outcome="crash",
        crash=(43.1, "system_reset_dump", 2),
        nmi=(1, 1, 0),
        base=MIGRATION,
    ),
]
# fmt: on

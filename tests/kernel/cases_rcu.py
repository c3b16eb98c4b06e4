"""RCU stall cases (issue 13, sections 5 and 7): the stack dumps of a report and what they cost, and
``g=``.  Hand computations with the facts of cases.py (timeout 21 s = 2100 jiffies, HZ 100):

* ``rcu_seq_start()`` makes ``gp_seq`` 1 mod 4 during a GP: the model starts idle at 10000, so the
  first stalled GP prints g=10005; the next one, after an idle spell, g=10013.
* Each report ends with ``rcu_dump_cpu_stacks()``: in CPU order every holdout; the reporter itself
  in place (``NMI backtrace for cpu N``), any other through a "safe" NMI IPI (an ordinary IPI) it
  waits for up to 5 s, spinning hard-disabled inside its tick.  A holdout that cannot take an
  interrupt (hard- or soft-masked, stalled in the hypervisor) costs the full 5 s; one that takes
  the IPI ends the wait at once.  Only then ``jiffies_stall = jiffies + 3*2100 + 3``.

The cases that depend on the version's ``rcu_cpu_stall_reset()`` and trailer are in
tests/kernel/test_rcu_stall.py (they select the behaviour directly).
"""

from __future__ import annotations

from .cases import INF, NO_RI0, Case, s

NO_HL = {"nmi_watchdog": 0}  # no hard-lockup reports in the way (the backtrace timing alone)
DETECTED = "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"
SELF = "rcu: INFO: rcu_sched self-detected stall on CPU"


def no_response(c: int, soft_mask: int, by: int) -> list[str]:
    return [
        f"Sending NMI from CPU {by} to CPUs {c}:",
        f"CPU {c} didn't respond to backtrace IPI, inspecting paca.",
        f"irq_soft_mask: 0x{soft_mask:02x} in_mce: 0 in_nmi: 0 current: {1000 + c} (script/{c})",
        f"Back trace of paca->saved_r1 (0x{0xC000000010000000 + c * 0x10000 + 0x3C70:016x}) (possibly stale):",
    ]


# fmt: off
CASES: list[Case] = [
    Case(
        # CPU 3 preempt-off 10.5-40.5: GP from 1050, self-detected at 3150 (31.50), g=10005; its QS
        # at 40.5 ends the GP (gp_seq 10008, idle).  CPU 5 preempt-off from 45: GP from 4500 with
        # gp_seq 10012 + 1 = 10013, self-detected at 6600 (66.00).  Each dumps only itself.
        "rcu_gseq_one_mod_four",
        {"sim": {"max_time_s": 70}, "script": [s(3, 10.5, "preempt_off", 30.0), s(5, 45.0, "preempt_off", INF)]},
        {"rcu_stall"},
        [
            (31.50, "rcu_stall", "self-detected", [3], 3, SELF),
            (66.00, "rcu_stall", "self-detected", [5], 5, SELF),
        ],
        log=["rcu: \t(t=2100 jiffies g=10005 q=0 ncpus=8)", "NMI backtrace for cpu 3",
             "rcu: \t(t=2100 jiffies g=10013 q=0 ncpus=8)", "NMI backtrace for cpu 5"],
    ),
    Case(
        # CPUs 2, 4, 6 hard-off from 100.5: CPU 0 reports at 12152 (121.52) and IPIs them in turn;
        # none can take an interrupt: 5 s each, the report ends at 136.52 (jiffy 13652).  Re-warn:
        # 13652 + 6303 = 19955 -> CPU 0 at 19957 (199.57).
        "rcu_backtrace_three_unresponsive",
        {"kernel": NO_HL, "sim": {"max_time_s": 200}, "script": [s(c, 100.5, "irqs_hard_off", INF) for c in (2, 4, 6)]},
        {"rcu_stall"},
        [
            (121.52, "rcu_stall", "smp-detected", [2, 4, 6], 0, DETECTED),
            (199.57, "rcu_stall", "rewarn", [2, 4, 6], 0, DETECTED),
        ],
        log=["rcu: \t(detected by 0, t=2102 jiffies, g=10005, q=0 ncpus=8)", *no_response(2, 3, 0),
             *no_response(4, 3, 0), *no_response(6, 3, 0), "rcu: \t(detected by 0, t=9907 jiffies, g=10005, q=0 ncpus=8)"],
    ),
    Case(
        # The same with the hard-lockup detector on.  CPU 0 reports 2, 4, 6 at 120 (their system
        # resets are taken: hard-off, running) and marks them stuck; the RCU report at 121.52
        # keeps CPU 0 spinning until 136.52, so it misses its heartbeats from 124: pending never
        # empties after the reset at 120, and CPU 1 at 136 finds 16 s >= 15: CPU 0 is reported and
        # takes the reset at once (16000 ms since its heartbeat at 120).  CPU 0's late heartbeat at
        # 136.52, when the dump ends: "became unstuck" (TB 136.52 * 512e6).
        "rcu_backtrace_reporter_flagged",
        {"kernel": NO_RI0, "sim": {"max_time_s": 140}, "script": [s(c, 100.5, "irqs_hard_off", INF) for c in (2, 4, 6)]},
        {"rcu_stall", "hardlockup", "nmi_ipi"},
        [
            (120.0, "hardlockup", "smp-detected", [2, 4, 6], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 2,4,6"),
            (120.0, "nmi_ipi", "ipi-report", [2], 2, "watchdog: CPU 2 Hard LOCKUP"),
            (120.0, "nmi_ipi", "ipi-report", [4], 4, "watchdog: CPU 4 Hard LOCKUP"),
            (120.0, "nmi_ipi", "ipi-report", [6], 6, "watchdog: CPU 6 Hard LOCKUP"),
            (121.52, "rcu_stall", "smp-detected", [2, 4, 6], 0, DETECTED),
            (136.0, "hardlockup", "smp-detected", [0], 1, "watchdog: CPU 1 detected hard LOCKUP on other CPUs 0"),
            (136.0, "nmi_ipi", "ipi-report", [0], 0, "watchdog: CPU 0 Hard LOCKUP"),
            (136.52, "hardlockup", "unstuck", [0], 0, "watchdog: CPU 0 became unstuck TB:69898240000"),
        ],
        log=["Sending NMI from CPU 0 to CPUs 6:", "watchdog: CPU 0 TB:69632000000, last heartbeat TB:61440000000 (16000ms ago)",
             "CPU 6 didn't respond to backtrace IPI, inspecting paca."],
    ),
    Case(
        # CPU 3 hard-off 100.5-123.5: reported at 121.52; it takes the IPI when it re-enables
        # interrupts at 123.5 (within 5 s) and prints its backtrace; its QS ends the GP, so no
        # re-warn.
        "rcu_backtrace_holdout_responds",
        {"kernel": NO_HL, "sim": {"max_time_s": 200}, "script": [s(3, 100.5, "irqs_hard_off", 23.0)]},
        {"rcu_stall"},
        [(121.52, "rcu_stall", "smp-detected", [3], 0, DETECTED)],
        log=["Sending NMI from CPU 0 to CPUs 3:", "NMI backtrace for cpu 3"],
    ),
    Case(
        # CPU 2 preempt-off (ticks) and CPU 5 hard-off from 100.5: CPU 2 self-detects at 12150
        # (121.50), dumps itself in place, then IPIs CPU 5, which cannot take it: 5 s, to 126.50.
        # Re-warn 12650 + 6303 = 18953 (189.53), again by CPU 2.
        "rcu_self_detected_dumps_other_holdouts",
        {"kernel": NO_HL, "sim": {"max_time_s": 195}, "script": [s(2, 100.5, "preempt_off", INF), s(5, 100.5, "irqs_hard_off", INF)]},
        {"rcu_stall"},
        [
            (121.50, "rcu_stall", "self-detected", [2], 2, SELF),
            (189.53, "rcu_stall", "rewarn", [2], 2, SELF),
        ],
        log=["rcu: \t(t=2100 jiffies g=10005 q=0 ncpus=8)", "NMI backtrace for cpu 2", *no_response(5, 3, 2)],
    ),
    Case(
        # print_cpu_stall_info() calls touch_nmi_watchdog() on the reporting CPU.  CPU 4 preempt-off
        # from 100.5 self-detects at 121.50 and so touches its own soft-lockup and workqueue
        # stamps: the sampler run at 124 only re-bases report_ts (u 115), the first soft lockup
        # comes when u > 135: 148 (u 137), stuck for 137 - 93 = 44s (touch_ts is the stopper's last
        # run at 100), then 172 (67s).  Workqueue: at 150.40 ts = max(pool 100.5, touched 121.5)
        # -> not stuck; at 180.48 ts = 150.40 (stamps reset by the run) -> stuck for 79s.
        "rcu_report_touches_softlockup",
        {"sim": {"max_time_s": 182}, "script": [s(4, 100.5, "preempt_off", INF)]},
        {"rcu_stall", "softlockup", "workqueue_lockup"},
        [
            (121.50, "rcu_stall", "self-detected", [4], 4, SELF),
            (148.0, "softlockup", "self-detected", [4], 4, "watchdog: BUG: soft lockup - CPU#4 stuck for 44s! [script/4:1004]"),
            (172.0, "softlockup", "rewarn", [4], 4, "watchdog: BUG: soft lockup - CPU#4 stuck for 67s! [script/4:1004]"),
            (180.48, "workqueue_lockup", "lockup", [4], 0, "BUG: workqueue lockup - pool cpus=4 node=0 flags=0x0 nice=0 stuck for 79s!"),
        ],
    ),
    Case(
        # A soft-masked holdout (local_irq_disable): the IPI stays pending too; paca shows
        # irq_soft_mask 0x01 (IRQS_DISABLED).
        "rcu_backtrace_soft_masked_holdout",
        {"kernel": NO_HL, "sim": {"max_time_s": 130}, "script": [s(6, 100.5, "irqs_soft_off", INF)]},
        {"rcu_stall"},
        [(121.52, "rcu_stall", "smp-detected", [6], 0, DETECTED)],
        log=no_response(6, 1, 0),
    ),
]
# fmt: on

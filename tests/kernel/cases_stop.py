"""Hand-computed cases of the soft-lockup clock, the stop_machine rendezvous and the mobility timing
(issue 13, sections 4, 5 and 7; docs/model/kernel.md).

Facts used (on top of cases.py's):

* soft-lockup units u(x) = floor(x / 1.073741824) of the CPU's ``running_clock()``: with
  ``softlockup_clock = "vtb"`` x = t - (time the vCPU was stalled in the hypervisor); with
  ``"timebase"`` (the default) x = t.  A report needs u(x) >= u(report_ts) + 21, i.e. x >= 22.5486 s after
  a touch at a clock of 0 (21 * 1.073741824).
* tiny migration (harness.MIGRATION): ssleep(1) from t=0 is 101 jiffies, filed at the timer wheel's
  level 1 (8 jiffies): it wakes at jiffy 104, t=1.04, and sees SUSPENDING: the factor (200) is set
  with lockup_detector_reconfigure() at 1.04 (hrtimer grid 1.04 + 4k, every touch_ts = 1.04), then
  stop_machine().  u(1.04) = 0; u(25.04) = 23; u(49.04) = 45.
* RCU stall warnings are off (``rcu_cpu_stall_suppress``) in the soft-lockup and rendezvous cases:
  an RCU self-detected report calls ``touch_nmi_watchdog()`` on the reporter (print_cpu_stall_info,
  cases_rcu.py), which would re-base the soft-lockup stamps these cases are about.
* the workqueue watchdog runs at 30.08 and 60.16 (3000 jiffies on the 64-jiffy level); after a run
  every touch stamp is that run's time.
"""

from __future__ import annotations

from .cases import INF, Case, s
from .harness import MIGRATION

SOFT = {"softlockup"}
NO_FIXUP = {"post_mobility_rtas": []}
NO_RCU = {"rcu_cpu_stall_suppress": 1}

# fmt: off
CASES: list[Case] = [
    # ---------------------------------------------------------------- the soft-lockup clock
    Case(
        # CPU 2 preempt_off from 100.5 for ever (takes timers, never schedules): touch_ts = the last
        # hrtimer run, 100 (u = 93).  Stalled in the hypervisor 104.5-114.5.  timebase: the run at 124
        # has u(124) = 115 > 113 -> "stuck for 22s" (115 - 93).
        "softlockup_clock_timebase_stall",
        {"kernel": {"softlockup_clock": "timebase", **NO_RCU}, "sim": {"max_time_s": 140},
         "script": [s(2, 100.5, "preempt_off", INF), s(2, 104.5, "stalled", 10)]},
        SOFT,
        [(124.0, "softlockup", "self-detected", [2], 2, "watchdog: BUG: soft lockup - CPU#2 stuck for 22s! [script/2:1002]")],
    ),
    Case(
        # The same with the VTB: after 114.5 CPU 2's clock is t - 10.  Runs at 124 (clock 114,
        # u = 106), 128 (118, u = 109), 132 (122, u = 113: not > 113), 136 (126, u = 117) -> report
        # at 136, "stuck for 24s" (117 - 93).
        "softlockup_clock_vtb_stall",
        {"kernel": {"softlockup_clock": "vtb", **NO_RCU}, "sim": {"max_time_s": 140},
         "script": [s(2, 100.5, "preempt_off", INF), s(2, 104.5, "stalled", 10)]},
        SOFT,
        [(136.0, "softlockup", "self-detected", [2], 2, "watchdog: BUG: soft lockup - CPU#2 stuck for 24s! [script/2:1002]")],
    ),
    Case(
        # VTB, a stall of 30 s that starts before the report and ends after the timebase one would
        # have come (nmi_watchdog=0: the SMP checker would flag the stall at 128 and the system reset
        # crash the partition): preempt_off from 100.5 (touch 100, u = 93), stalled 110.5-140.5.  The clock reaches
        # 122.406 (u = 114) at t = 152.406: run at 152 has clock 122 (u = 113), run at 156 clock 126
        # (u = 117) -> "stuck for 24s" at 156.  (timebase: the late run at 140.5 itself, u = 130:
        # "stuck for 37s".)
        "softlockup_clock_vtb_long_stall",
        {"kernel": {"softlockup_clock": "vtb", "nmi_watchdog": 0, **NO_RCU}, "sim": {"max_time_s": 160},
         "script": [s(2, 100.5, "preempt_off", INF), s(2, 110.5, "stalled", 30)]},
        SOFT,
        [(156.0, "softlockup", "self-detected", [2], 2, "watchdog: BUG: soft lockup - CPU#2 stuck for 24s! [script/2:1002]")],
    ),
    Case(
        "softlockup_clock_timebase_long_stall",
        {"kernel": {"softlockup_clock": "timebase", "nmi_watchdog": 0, **NO_RCU}, "sim": {"max_time_s": 160},
         "script": [s(2, 100.5, "preempt_off", INF), s(2, 110.5, "stalled", 30)]},
        SOFT,
        [(140.5, "softlockup", "self-detected", [2], 2, "watchdog: BUG: soft lockup - CPU#2 stuck for 37s! [script/2:1002]")],
    ),
    # ---------------------------------------------------------------- the stop_machine rendezvous
    Case(
        # CPU 1 preempt_off 0.5-70.5 (a straggler: its stopper cannot run); CPUs 0, 2, 3 arrive at
        # 1.04 and spin in MULTI_STOP_PREPARE as migration/N (pid 12 + 6N) with interrupts on.  The
        # reconfigure at 1.04 set every touch_ts to 1.04 (u = 0); the first run with u > 20 is 25.04
        # (u = 23): all four CPUs "stuck for 23s", CPU 1 with its own task; re-warned at 49.04
        # (u = 45 > 23 + 20), "stuck for 45s"; next would need u > 65 (t >= 70.87): the rendezvous
        # ends at 70.5.  Workqueue: at 30.08 nothing is past 30 s yet (CPU 1 from jiffy 50:
        # 3008 <= 3050); at 60.16 every pool is stuck since the 30.08 run (6016 > 3008 + 3000):
        # CPU 0..3 "stuck for 59s" ((6016 - 50) and (6016 - 104) jiffies -> 59 s).  (CPUs reported at
        # the same instant appear in the model's event order: the arrived CPUs were planned first.)
        "stop_machine_straggler_70s",
        {"kernel": {**NO_FIXUP, **NO_RCU}, "script": [s(1, 0.5, "preempt_off", 70)]},
        SOFT | {"workqueue_lockup"},
        [
            (25.04, "softlockup", "self-detected", [0], 0, "watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [migration/0:12]"),
            (25.04, "softlockup", "self-detected", [2], 2, "watchdog: BUG: soft lockup - CPU#2 stuck for 23s! [migration/2:24]"),
            (25.04, "softlockup", "self-detected", [3], 3, "watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [migration/3:30]"),
            (25.04, "softlockup", "self-detected", [1], 1, "watchdog: BUG: soft lockup - CPU#1 stuck for 23s! [script/1:1001]"),
            (49.04, "softlockup", "rewarn", [0], 0, "watchdog: BUG: soft lockup - CPU#0 stuck for 45s! [migration/0:12]"),
            (49.04, "softlockup", "rewarn", [2], 2, "watchdog: BUG: soft lockup - CPU#2 stuck for 45s! [migration/2:24]"),
            (49.04, "softlockup", "rewarn", [3], 3, "watchdog: BUG: soft lockup - CPU#3 stuck for 45s! [migration/3:30]"),
            (49.04, "softlockup", "rewarn", [1], 1, "watchdog: BUG: soft lockup - CPU#1 stuck for 45s! [script/1:1001]"),
            (60.16, "workqueue_lockup", "lockup", [0], 0, "BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 59s!"),
            (60.16, "workqueue_lockup", "lockup", [1], 0, "BUG: workqueue lockup - pool cpus=1 node=0 flags=0x0 nice=0 stuck for 59s!"),
            (60.16, "workqueue_lockup", "lockup", [2], 0, "BUG: workqueue lockup - pool cpus=2 node=0 flags=0x0 nice=0 stuck for 59s!"),
            (60.16, "workqueue_lockup", "lockup", [3], 0, "BUG: workqueue lockup - pool cpus=3 node=0 flags=0x0 nice=0 stuck for 59s!"),
        ],
        log=["mobility: calling ibm,suspend-me on CPU 3"],
        base=MIGRATION,
    ),
    Case(
        # A straggler for 20 s (0.5-20.5): the arrived CPUs never reach u > 20 (the rendezvous ends
        # at 20.5, before 22.55): nothing; the heartbeats went on, so no hard lockup either.
        "stop_machine_straggler_20s",
        {"kernel": NO_FIXUP, "script": [s(1, 0.5, "preempt_off", 20)]},
        SOFT | {"hardlockup", "workqueue_lockup"},
        [],
        base=MIGRATION,
    ),
    # ---------------------------------------------------------------- mobility timing
    Case(
        # The flow moves by the sleeps' jiffy rounding: the ssleep(1) poll at 1.04, the resume at 1.29,
        # the completion wait's msleep(500) from jiffy 129 to 180 (1.80): the 50 s RTAS call then
        # runs from 1.290015; its SMP report under the factor comes at 1.04 + 48 = 49.04 (the grid of
        # the 1.04 restart), not at 49.0.
        "mobility_sleeps_move_the_timeline",
        {"kernel": {"post_mobility_rtas": [{"name": "ibm,update-nodes", "count": 1, "median_s": 50, "sigma": 0}],
                    "rtas_touches_memory": False,
                    "nmi_ri0_prob": {"kernel": 0, "preempt_off": 0, "irqs_soft_off": 0, "irqs_hard_off": 0, "rtas": 0}}},
        {"hardlockup"},
        [
            (49.04, "hardlockup", "smp-detected", [0], 1, "watchdog: CPU 1 detected hard LOCKUP on other CPUs 0"),
            (51.290015, "hardlockup", "unstuck", [0], 0, "watchdog: CPU 0 became unstuck TB:26260487680"),
        ],
        base=MIGRATION,
    ),
]
# fmt: on

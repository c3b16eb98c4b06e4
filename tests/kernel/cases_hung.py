"""Hand-computed cases of the hung-task detector around drmgr (issue 13; lpmsim.kernel.hung_task).

Facts used (on top of cases.py's):

* khungtaskd scans at 120, 240, ... s while some CPU can schedule.  When a scan is due and no CPU
  can (all in the stop_machine stopper, or all stalled / preempt-off), it scans at the first tick
  (10 ms) after one can, and the next scan is 120 s after that one.
* A D-state task is first seen (``last_switch_time`` = that scan's jiffies) and reported at the
  first scan >= 120 s later: ``blocked for more than (j - last_switch) / HZ seconds``.
* drmgr (pid 4242) sleeps uninterruptibly in ``stop_machine()`` (``wait_for_completion``) and in each
  ``ssleep(1)`` / ``msleep(500)`` poll of H_VASI_STATE; each poll sleep is a new context switch.
* tiny migration (harness.MIGRATION): ssleep(1) polls wake every 1.04 s (101 jiffies at the wheel's
  8-jiffy level: 1.04 k); stop_machine() at 1.04; blackout 0.25 s; the waker H_PRODs the 3 others
  5 us apart, then releases the stop_machine.
"""

from __future__ import annotations

from .cases import INF, Case, s
from .harness import MIGRATION

HUNG = {"hung_task"}
NO_RCU = {"rcu_cpu_stall_suppress": 1}

# fmt: off
CASES: list[Case] = [
    Case(
        # script/2 in D from 100.  Every CPU preempt-off 110-130.005: the scan due at 120 waits for
        # the first tick after 130.005 -> 130.01 (first sight, last_switch = 13001); next scans
        # 250.01 (25001 - 13001 = 12000 jiffies: 120 s) and 370.01 (240 s).  Without the wait the
        # reports would be at 240 and 360.
        "hung_task_waits_for_a_cpu",
        {"kernel": NO_RCU, "sim": {"max_time_s": 380},
         "script": [s(2, 100.0, "d_state", INF)] + [s(c, 110.0, "preempt_off", 20.005) for c in range(8)]},
        HUNG,
        [
            (250.01, "hung_task", "report", [2], 0, "INFO: task script/2:2002 blocked for more than 120 seconds."),
            (370.01, "hung_task", "report", [2], 0, "INFO: task script/2:2002 blocked for more than 240 seconds."),
        ],
    ),
    Case(
        # CPU 1 preempt-off 0.5-300.5 holds the stop_machine called at 1.04: CPUs 0, 2, 3 spin in the
        # stopper, drmgr sleeps in D from 1.04.  No CPU can schedule until the release: the scan due
        # at 120 waits.  CPU 1 arrives at 300.5, suspend 300.5, resume 300.75, release (and drmgr's
        # wake-up) at 300.75 + 3 * 5 us = 300.750015; first tick after: 300.76, the scan: drmgr is
        # running, script/2 (D since 0.5) first seen -> reported at 420.76 (120 s) and 540.76 (240 s).
        # drmgr, in D for 299.7 s, is never reported (the model without the wait reported it at 240).
        "hung_drmgr_in_long_stop_machine",
        {"kernel": {**NO_RCU, "tail_s": 300}, "sim": {"max_time_s": 560},
         "script": [s(1, 0.5, "preempt_off", 300), s(2, 0.5, "d_state", INF)]},
        HUNG,
        [
            (420.76, "hung_task", "report", [2], 0, "INFO: task script/2:2002 blocked for more than 120 seconds."),
            (540.76, "hung_task", "report", [2], 0, "INFO: task script/2:2002 blocked for more than 240 seconds."),
        ],
        log=["mobility: calling ibm,suspend-me on CPU 3", "mobility: CPU 3 waking all threads"],
        base=MIGRATION,
    ),
    Case(
        # A 0.005 Gb/s link: pre-copy is still running at 250, drmgr polls H_VASI_STATE with ssleep(1)
        # (1.04 k).  At the scan at 120 it sleeps since 119.60 (first sight); at 240 since 239.20: a
        # new switch, so last_switch_time is reset, not reported (a single 120 s D sleep would be).
        "hung_drmgr_vasi_polls",
        {"platform": {"link_gbps": 0.005}, "sim": {"max_time_s": 250}},
        HUNG,
        [],
        base=MIGRATION,
    ),
]
# fmt: on

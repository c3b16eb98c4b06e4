"""Kernel cases of topic "versions": the same scripts on kernels before and after a version change
(lpmsim.kernel.versions), hand-computed with the facts at the top of cases.py.

* powerpc watchdog before v5.17 (no wd_try_report; wd_smp_lock held over the SMP report and its NMI
  IPIs; the CPUs still pending marked stuck after the IPIs) against 5.17+ (stuck CPUs marked before
  the IPIs, sent outside the lock; a soft-NMI that finds another report going retries every 100 ms).
* the taint flags and release the hung-task report prints (kernel/hung_task.c ``      %s %s %.*s``).

TB = t * 512e6; the soft-NMI's DEC period is 0x7fffffff ticks = 4.194303998 s; "ms ago" floors.
"""

from __future__ import annotations

from .cases import HL, INF, NO_RI0, Case, s

# CPU 5 stalled in the hypervisor from 101 for ever: pending = {5} from the round reset at 104 (every
# other CPU clears its bit by 108), so at grid 120 (16 s >= 15 s after 104) CPU 0 reports it and sends
# it an NMI IPI that times out at 121.0.
_REPORT_5 = (
    120.0,
    "hardlockup",
    "smp-detected",
    [5],
    0,
    "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5",
)
_TIMEOUT_5 = (121.0, "nmi_ipi", "timeout", [5], 0, None)

# CPU 3 soft-masked from 111.8: its last heartbeat is 108; DEC entries at 111.81 (next tick),
# 116.004304 (8.0 s < 10 s), 120.198608 (TB 111.81*512e6 + 2*0x7fffffff = 61541687294, 12.2 s >= 10 s):
# the soft-NMI wants to report while CPU 0's SMP report of CPU 5 is going on (120 to 121).
# The hand computations below take smp_send_nmi_ipi()'s timeout as exactly 1 s (the kernel's nominal
# 1000000 us): the udelay(1) loop's own overhead (kernel.nmi_ipi_loop_overhead_ns, cases_masking.py)
# is set to 0 here so that the versions' differences stay readable.
IPI_1S = {"nmi_ipi_loop_overhead_ns": 0}
_SCRIPT_53 = [s(5, 101, "stalled", INF), s(3, 111.8, "irqs_soft_off", INF)]

CASES: list[Case] = [
    Case(
        # 5.17+: wd_try_report fails for CPU 3 while CPU 0 reports -> "try again in 100ms": entries
        # 120.298608 ... 120.998608 (still reporting), 121.098608: reports (TB 61541687294 + 0.9*512e6 =
        # 62002487294; 62002487294 - 108*512e6 = 6706487294 ticks = 13098 ms).
        "wd_v517_snmi_retries_100ms",
        {"kernel": {**NO_RI0, **IPI_1S, "version": "5.17"}, "sim": {"max_time_s": 122}, "script": _SCRIPT_53},
        HL,
        [
            _REPORT_5,
            _TIMEOUT_5,
            (
                121.098608,
                "hardlockup",
                "self-detected",
                [3],
                3,
                "watchdog: CPU 3 self-detected hard LOCKUP @ _raw_spin_lock_irqsave+0x80/0x110",
            ),
        ],
        log=["watchdog: CPU 3 TB:62002487294, last heartbeat TB:55296000000 (13098ms ago)"],
        nmi=(1, 1, 0),
    ),
    Case(
        # 5.16: CPU 3's soft-NMI at 120.198608 spins on wd_smp_lock, held by CPU 0 until its IPI to
        # CPU 5 times out at 121.0; CPU 0 then marks the still-pending CPU 5 stuck and unlocks; CPU 3 is
        # not stuck: reports at 121.0 with the TB it read on entry (61541687294; 6245687294 ticks after
        # its heartbeat at 108 = 12198 ms).
        "wd_v516_snmi_waits_for_lock",
        {"kernel": {**NO_RI0, **IPI_1S, "version": "5.16"}, "sim": {"max_time_s": 122}, "script": _SCRIPT_53},
        HL,
        [
            _REPORT_5,
            _TIMEOUT_5,
            (
                121.0,
                "hardlockup",
                "self-detected",
                [3],
                3,
                "watchdog: CPU 3 self-detected hard LOCKUP @ _raw_spin_lock_irqsave+0x80/0x110",
            ),
        ],
        log=["watchdog: CPU 3 TB:61541687294, last heartbeat TB:55296000000 (12198ms ago)"],
        nmi=(1, 1, 0),
    ),
    Case(
        # CPUs 5 and 6 stalled from 101 (6 until 120.7).  At 120 CPU 0 reports 5-6; 5.17+ marks both
        # stuck before the IPIs.  IPI to 5 times out at 121.0.  CPU 6 comes back at 120.7: its missed
        # heartbeat runs, it is stuck -> "became unstuck TB:61798400000" (120.7*512e6).  IPI to 6 at
        # 121.0: running, taken at once.
        "wd_v517_target_back_during_ipis",
        {
            "kernel": {**NO_RI0, **IPI_1S, "version": "5.17"},
            "sim": {"max_time_s": 122},
            "script": [s(5, 101, "stalled", INF), s(6, 101, "stalled", 19.7)],
        },
        HL,
        [
            (
                120.0,
                "hardlockup",
                "smp-detected",
                [5, 6],
                0,
                "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5-6",
            ),
            (120.7, "hardlockup", "unstuck", [6], 6, "watchdog: CPU 6 became unstuck TB:61798400000"),
            _TIMEOUT_5,
            (121.0, "nmi_ipi", "ipi-report", [6], 6, "watchdog: CPU 6 Hard LOCKUP"),
        ],
        nmi=(2, 1, 0),
    ),
    Case(
        # 5.16: the IPIs go out under wd_smp_lock with 5 and 6 still pending.  CPU 6's heartbeat at
        # 120.7 clears its pending bit (lock-free; it is not stuck: no line).  IPI to 6 at 121.0 is
        # taken; then set_cpumask_stuck(pending = {5}): only CPU 5 is stuck, and 6 never prints
        # "became unstuck".
        "wd_v516_target_back_during_ipis",
        {
            "kernel": {**NO_RI0, **IPI_1S, "version": "5.16"},
            "sim": {"max_time_s": 122},
            "script": [s(5, 101, "stalled", INF), s(6, 101, "stalled", 19.7)],
        },
        HL,
        [
            (
                120.0,
                "hardlockup",
                "smp-detected",
                [5, 6],
                0,
                "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5-6",
            ),
            _TIMEOUT_5,
            (121.0, "nmi_ipi", "ipi-report", [6], 6, "watchdog: CPU 6 Hard LOCKUP"),
        ],
        nmi=(2, 1, 0),
    ),
    Case(
        # The same CPU 5 report on the SLES 15 SP4 kernel (5.14.21 + the rework backport, 76521c4b0291):
        # as 5.17+.
        "wd_sles15sp4_has_rework",
        {
            "kernel": {**NO_RI0, **IPI_1S, "distro": "sles15-sp4"},
            "sim": {"max_time_s": 122},
            "script": _SCRIPT_53,
        },
        HL,
        [
            _REPORT_5,
            _TIMEOUT_5,
            (
                121.098608,
                "hardlockup",
                "self-detected",
                [3],
                3,
                "watchdog: CPU 3 self-detected hard LOCKUP @ _raw_spin_lock_irqsave+0x80/0x110",
            ),
        ],
        nmi=(1, 1, 0),
    ),
    # ---------------------------------------------------------------- taint and release in the banners
    Case(
        # CPU 2 in D state from 100.5: khungtaskd reports it at 240.  No soft lockup: "Not tainted"
        # and the release of 6.12 ("6.12.0"), version "#1".
        "hung_task_not_tainted_612",
        {"kernel": {"version": "6.12"}, "sim": {"max_time_s": 241}, "script": [s(2, 100.5, "d_state", INF)]},
        {"hung_task"},
        [
            (
                240.0,
                "hung_task",
                "report",
                [2],
                0,
                "INFO: task script/2:2002 blocked for more than 120 seconds.",
            )
        ],
        log=["      Not tainted 6.12.0 #1"],
    ),
    Case(
        # As above plus CPU 4 preempt-off from 100.5: soft lockup at 124 (soft_first_report) ->
        # add_taint(TAINT_SOFTLOCKUP).  6.12 prints 19 flag positions (P..T, N): 'G', 13 blanks
        # (F S R M B U D A W C I O E), 'L', 4 blanks (K X T N); then " 6.12.0 #1".
        "hung_task_tainted_L_612",
        {
            "kernel": {"version": "6.12"},
            "sim": {"max_time_s": 241},
            "script": [s(2, 100.5, "d_state", INF), s(4, 100.5, "preempt_off", INF)],
        },
        {"hung_task"},
        [
            (
                240.0,
                "hung_task",
                "report",
                [2],
                0,
                "INFO: task script/2:2002 blocked for more than 120 seconds.",
            )
        ],
        log=["      Tainted: G             L     6.12.0 #1"],
    ),
    Case(
        # 5.14: 18 positions (no TAINT_TEST): 'G', 13 blanks, 'L', 3 blanks; release "5.14.0".
        "hung_task_tainted_L_514",
        {
            "kernel": {"version": "5.14"},
            "sim": {"max_time_s": 241},
            "script": [s(2, 100.5, "d_state", INF), s(4, 100.5, "preempt_off", INF)],
        },
        {"hung_task"},
        [
            (
                240.0,
                "hung_task",
                "report",
                [2],
                0,
                "INFO: task script/2:2002 blocked for more than 120 seconds.",
            )
        ],
        log=["      Tainted: G             L    5.14.0 #1"],
    ),
    Case(
        # SLES 15 SP4: 20 positions (two SUSE flags after T, as in the b6b1c3ce06ca log) and its release.
        "hung_task_tainted_L_sles15sp4",
        {
            "kernel": {"distro": "sles15-sp4"},
            "sim": {"max_time_s": 241},
            "script": [s(2, 100.5, "d_state", INF), s(4, 100.5, "preempt_off", INF)],
        },
        {"hung_task"},
        [
            (
                240.0,
                "hung_task",
                "report",
                [2],
                0,
                "INFO: task script/2:2002 blocked for more than 120 seconds.",
            )
        ],
        log=["      Tainted: G             L      5.14.21-150400.22-default #1"],
    ),
]

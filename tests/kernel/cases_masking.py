"""Interrupt masking as Book3S-64 does it (issue 13 section 3): hand-computed cases.

Facts used (besides those in cases.py):

* an external interrupt that reaches a soft-masked CPU hard-disables it (exceptions-64s.S
  ``masked_interrupt``: PACA_IRQ_MUST_HARD_MASK): from then on no decrementer, so no soft-NMI,
  until interrupts are re-enabled; a CPU stalled in the hypervisor takes it when it runs again;
* the soft-NMI of a CPU soft-masked at 100.5 (heartbeat 100) would report at 113.092912 (DEC
  entries 100.51 + k*4.194304, cases.py ``self_soft_off_thresh10``);
* the SMP checker: a CPU stuck since before the reset at 104 is reported at 120 by CPU 0, and
  takes the NMI IPI at once when it runs (``smp_hard_off_ipi_answered``): "CPU n Hard LOCKUP",
  TB 120*512e6 = 61440000000, last heartbeat 51200000000 (20000 ms ago);
* ``rtas_lock`` waiters spin soft-masked (raw_spin_lock_irqsave); only the holder is hard-disabled.

The interrupts are sent by "irq" calls (harness.py: ``IrqArrivals.deliver``) with the workload's
rate at 0, except in the last case, whose rate makes the arrival certain before the soft-NMI could
report (P(none in 12.59 s at 1000/s) = e^-12590).
"""

from __future__ import annotations

from .cases import HL, INF, NO_RI0, Case, s

SELF3 = "watchdog: CPU 3 self-detected hard LOCKUP @ _raw_spin_lock_irqsave+0x80/0x110"
SMP3 = "watchdog: CPU 0 detected hard LOCKUP on other CPUs 3"
IPI3_LOG = "watchdog: CPU 3 TB:61440000000, last heartbeat TB:51200000000 (20000ms ago)"

# fmt: off
CASES: list[Case] = [
    Case(
        # CPU 3 soft-masked from 100.5 for ever; an external interrupt at 105 hard-masks it.  The
        # DEC entries at 100.51 and 104.70 were too early to report; after 105 there are none, so
        # no self-detection at 113.09: only the SMP checker at 120 and its NMI IPI (taken at once).
        "masking_irq_before_soft_nmi",
        {"kernel": NO_RI0, "sim": {"max_time_s": 121}, "script": [s(3, 100.5, "irqs_soft_off", INF)]},
        HL,
        [
            (120.0, "hardlockup", "smp-detected", [3], 0, SMP3),
            (120.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
        ],
        log=[IPI3_LOG],
        calls=[(105.0, "irq", 3)],
        nmi=(1, 0, 0),
    ),
    Case(
        # The interrupt comes at 114, after the soft-NMI would have reported at 113.092912.  MOVED
        # (issue 13 s3): RCU's resched/irq_work IPI to its holdout CPU 3 at the first FQS pass after
        # jiffies_resched (100.5 + 10.51 = 111.01) hard-masks it before: no self-detection; the
        # interrupt at 114 finds it hard-disabled already; SMP checker at 120 as in the case above.
        # (cases_ipi.py ipi_late_resched_irq_after_soft_nmi keeps the original with a 60 s timeout.)
        "masking_irq_after_soft_nmi",
        {"kernel": NO_RI0, "sim": {"max_time_s": 125}, "script": [s(3, 100.5, "irqs_soft_off", INF)]},
        HL,
        [
            (120.0, "hardlockup", "smp-detected", [3], 0, SMP3),
            (120.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
        ],
        log=[IPI3_LOG],
        calls=[(114.0, "irq", 3)],
        nmi=(1, 0, 0),
    ),
    Case(
        # The interrupt arrives at 105 while CPU 3 is stalled in the hypervisor (104.8 -> 106): it
        # stays pending and hard-masks the CPU when it runs again at 106, before the DEC entry due
        # at 108.90.  (Dropped, it would leave the self-detection at 113.09.)
        "masking_irq_pending_over_stall",
        {"kernel": NO_RI0, "sim": {"max_time_s": 121}, "script": [s(3, 100.5, "irqs_soft_off", INF), s(3, 104.8, "stalled", 1.2)]},
        HL,
        [
            (120.0, "hardlockup", "smp-detected", [3], 0, SMP3),
            (120.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
        ],
        log=[IPI3_LOG],
        calls=[(105.0, "irq", 3)],
        nmi=(1, 0, 0),
    ),
    Case(
        # As masking_irq_before_soft_nmi with RI=0 certain in soft-masked code: the NMI IPI at 120
        # finds MSR[RI]=0; system_reset_exception -> die("Unrecoverable System Reset"): the Oops,
        # die() returns (trap 0x100) and the second nmi_exit BUGs at once: crash at 120.
        "masking_hard_masked_ri0",
        {"kernel": {"nmi_ri0_prob": {"irqs_soft_off": 1}}, "sim": {"max_time_s": 200}, "script": [s(3, 100.5, "irqs_soft_off", INF)]},
        HL | {"panic"},
        [
            (120.0, "hardlockup", "smp-detected", [3], 0, SMP3),
            (120.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
            (120.0, "nmi_ipi", "unrecoverable", [3], 3, "Oops: Unrecoverable System Reset, sig: 6 [#1]"),
            (120.0, "panic", "crash", [3], 3, "Oops: Unrecoverable System Reset, sig: 6 [#1]"),
        ],
        outcome="crash",
        crash=(120.0, "unrecoverable_system_reset", 3),
        log=["watchdog: CPU 3 Hard LOCKUP", IPI3_LOG, "Oops: Unrecoverable System Reset, sig: 6 [#1]"],
        calls=[(105.0, "irq", 3)],
        nmi=(1, 0, 1),
    ),
    Case(
        # CPU 5 in an RTAS call 101 -> 131 (holds rtas_lock, hard-disabled); CPU 6 asks for one at
        # 101.5 and spins for the lock *soft*-masked.  Its soft-NMI (heartbeat 100): DEC entries
        # 101.51, 105.70, 109.90 (9.90 s), 114.092912 (14.09 s) -> self-detected; TB = 101.51*512e6
        # + 3*0x7fffffff = 58415570941, 14092 ms.  That marks 6 stuck and takes it out of pending,
        # so at 120 CPU 0 reports only 5 (IPI taken in RTAS, RI=1 on v6.6).  5 leaves RTAS at 131
        # (unstuck); 6 then holds the lock hard-disabled for its 1 s and re-enables at 132.
        "masking_rtas_waiter_soft_masked",
        {"kernel": NO_RI0, "sim": {"max_time_s": 133}, "script": [s(5, 101, "rtas_call", 30), s(6, 101.5, "rtas_call", 1)]},
        HL,
        [
            (114.092912, "hardlockup", "self-detected", [6], 6, "watchdog: CPU 6 self-detected hard LOCKUP @ _raw_spin_lock_irqsave+0x80/0x110"),
            (120.0, "hardlockup", "smp-detected", [5], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 5"),
            (120.0, "nmi_ipi", "ipi-report", [5], 5, "watchdog: CPU 5 Hard LOCKUP"),
            (131.0, "hardlockup", "unstuck", [5], 5, "watchdog: CPU 5 became unstuck TB:67072000000"),
            (132.0, "hardlockup", "unstuck", [6], 6, "watchdog: CPU 6 became unstuck TB:67584000000"),
        ],
        log=["watchdog: CPU 6 TB:58415570941, last heartbeat TB:51200000000 (14092ms ago)"],
        nmi=(1, 0, 0),
    ),
    Case(
        # No calls (so the round trip covers it): 1000 external interrupts/s per vCPU.  CPU 3's
        # first one comes within milliseconds of 100.5 (P(none before 113.09) = e^-12590), so the
        # soft-NMI never reports; the SMP checker does at 120, as in masking_irq_before_soft_nmi.
        "masking_rate_hard_masks",
        {"kernel": NO_RI0, "workload": {"irq_rate_hz": 1000}, "sim": {"max_time_s": 121}, "script": [s(3, 100.5, "irqs_soft_off", INF)]},
        HL,
        [
            (120.0, "hardlockup", "smp-detected", [3], 0, SMP3),
            (120.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
        ],
        log=[IPI3_LOG],
        nmi=(1, 0, 0),
    ),
]
# fmt: on

"""The kernel's own IPIs hard-mask soft-masked CPUs (issue 13 section 3): hand-computed cases.

Facts used (besides those of cases.py and cases_masking.py; 8 vCPUs, HZ 100, RCU timeout 21 s):

* an RCU GP that stalls starts when its first holdout stops scheduling (here 100.5, jiffy
  gp_start); ``record_gp_stall_check_time`` sets ``jiffies_resched = gp_start + 2100 / 2``; the GP
  kthread's FQS passes run every ``1 + 8 / 256 = 1`` jiffy, and the first one with
  ``time_after(jiffies, jiffies_resched)`` - gp_start + 1051, 100.5 + 10.51 = 111.01 - calls
  ``resched_cpu()`` and ``irq_work_queue_on()`` for each holdout (kernel/rcu/tree.c
  ``rcu_implicit_dynticks_qs``): IPIs through the interrupt controller, external interrupts that
  hard-mask a soft-masked holdout (exceptions-64s.S ``masked_interrupt``).  None later in the GP
  (``resched_curr`` returns early while ``TIF_NEED_RESCHED`` is set; the irq_work is queued once
  per GP).  With a 60 s timeout: gp_start + 3001, 130.51;
* the soft-NMI of a CPU soft-masked at 100.5 (heartbeat 100) would report at 113.092912 (DEC
  entries 100.51 + k*4.194304); hard-masked before, it is left to the SMP checker: reset at 104,
  report at 120 by CPU 0, NMI IPI taken at once (TB 61440000000, last heartbeat 51200000000,
  20000 ms);
* an RCU "other CPUs" report at gp_start + 2102 jiffies (121.52) sends each holdout the safe
  backtrace NMI, an IPI message (smp.c ``do_message_pass``): it too hard-masks a soft-masked
  holdout; the reporter spins hard-disabled (``busy``) until the target answers or 5 s pass.
"""

from __future__ import annotations

from .cases import HL, INF, NO_RI0, Case, s
from .cases_masking import IPI3_LOG, SMP3

SELF3 = "watchdog: CPU 3 self-detected hard LOCKUP @ _raw_spin_lock_irqsave+0x80/0x110"
SMP_120 = [
    (120.0, "hardlockup", "smp-detected", [3], 0, SMP3),
    (120.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
]
OTHERS = [c for c in range(8) if c != 3]

# fmt: off
CASES: list[Case] = [
    Case(
        # cases_masking.py masking_irq_after_soft_nmi as it was before the resched IPI: with a 60 s
        # RCU timeout the IPI comes at 130.51, so the soft-NMI reports at 113.092912 (TB 100.51 *
        # 512e6 + 3 * 0x7fffffff = 57903570941, 13092 ms); the interrupt at 114 and the resched IPI
        # find a CPU already marked stuck: the SMP checker leaves it out, nothing more.
        "ipi_late_resched_irq_after_soft_nmi",
        {"kernel": {"rcu_cpu_stall_timeout": 60, **NO_RI0}, "sim": {"max_time_s": 135}, "script": [s(3, 100.5, "irqs_soft_off", INF)]},
        HL,
        [(113.092912, "hardlockup", "self-detected", [3], 3, SELF3)],
        log=["watchdog: CPU 3 TB:57903570941, last heartbeat TB:51200000000 (13092ms ago)"],
        calls=[(114.0, "irq", 3)],
        nmi=(0, 0, 0),
    ),
    Case(
        # CPU 3 stalled in the hypervisor 110.5-112 while the resched IPI is sent (111.01): it
        # stays pending and hard-masks the CPU when it runs again at 112, before the DEC entry due
        # at 113.09: no self-detection, the SMP checker at 120.  (Dropped, the soft-NMI would
        # report at 113.092912.)
        "ipi_resched_pending_over_stall",
        {"kernel": NO_RI0, "sim": {"max_time_s": 121}, "script": [s(3, 100.5, "irqs_soft_off", INF), s(3, 110.5, "stalled", 1.5)]},
        HL,
        SMP_120,
        log=[IPI3_LOG],
        nmi=(1, 0, 0),
    ),
    Case(
        # Every other CPU preempt-off 110.5-114 (not holdouts of the GP begun at 100.5: they stop
        # after its first jiffy): at 111.01 no CPU can run the GP kthread, so its FQS pass - and
        # the resched IPI - waits until they schedule again at 114.  The soft-NMI reports CPU 3
        # first, at 113.092912; the IPI at 114 finds it marked stuck.  (Sent at 111.01 regardless,
        # the IPI would have hard-masked it and left it to the SMP checker at 120.)
        "ipi_resched_waits_for_the_gp_kthread",
        {"kernel": NO_RI0, "sim": {"max_time_s": 121},
         "script": [s(3, 100.5, "irqs_soft_off", INF)] + [s(c, 110.5, "preempt_off", 3.5) for c in OTHERS]},
        HL,
        [(113.092912, "hardlockup", "self-detected", [3], 3, SELF3)],
        log=["watchdog: CPU 3 TB:57903570941, last heartbeat TB:51200000000 (13092ms ago)"],
        nmi=(0, 0, 0),
    ),
    Case(
        # The backtrace IPI.  CPU 3 preempt-off from 100.5 (a holdout that takes interrupts: the
        # resched IPI at 111.01 is taken at once, its irq_work runs), soft-masked from 112.5 (its
        # heartbeat ran at 112), the same GP.  At 121.52 CPU 0 reports it ("3-....": the irq_work
        # ran, no ticks now) and sends it the safe backtrace NMI: an external interrupt, so CPU 3 is
        # hard-masked at 121.52 and cannot answer: CPU 0 spins until 126.52 ("didn't respond",
        # irq_soft_mask 0x01: the hard mask is PACA_IRQ_HARD_DIS, not the soft mask).  The soft-NMI
        # would have reported at 112.51 + 3*4.194304 = 125.092912 (13.09 s since 112); it cannot
        # now.  SMP checker: reset at 116 (CPU 0 empties pending), CPU 3 never clears again; CPU
        # 0's heartbeat at 124 runs late at 126.52 (busy); first beat with now - 116 >= 15: 132, by
        # CPU 0; the NMI IPI is taken at once: TB 132*512e6 = 67584000000, last heartbeat 112.
        # At SMT2 CPU 0 is on core 0 and CPU 3 on core 1: the IPI goes through the interrupt
        # controller (pseries dbell_or_ic_cause_ipi).
        "ipi_backtrace_hard_masks_holdout",
        {"kernel": NO_RI0, "partition": {"smt": 2}, "sim": {"max_time_s": 133},
         "script": [s(3, 100.5, "preempt_off", 12), s(3, 112.5, "irqs_soft_off", INF)]},
        {"rcu_stall", "hardlockup", "nmi_ipi"},
        [
            (121.52, "rcu_stall", "smp-detected", [3], 0, "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"),
            (132.0, "hardlockup", "smp-detected", [3], 0, SMP3),
            (132.0, "nmi_ipi", "ipi-report", [3], 3, "watchdog: CPU 3 Hard LOCKUP"),
        ],
        log=[
            "rcu: \t3-....: (0 ticks this GP) idle=0000/1/0x4000000000000000 softirq=0/0 fqs=2102",
            "Sending NMI from CPU 0 to CPUs 3:",
            "CPU 3 didn't respond to backtrace IPI, inspecting paca.",
            "irq_soft_mask: 0x01 in_mce: 0 in_nmi: 0 current: 1003 (script/3)",
            "watchdog: CPU 3 TB:67584000000, last heartbeat TB:57344000000 (20000ms ago)",
        ],
        nmi=(1, 0, 0),
    ),
    Case(
        # The same at SMT8 (the default): CPU 0 and CPU 3 are threads of one core, so the safe NMI
        # is a msgsndp doorbell (from v5.9, Kernel.sibling_doorbells): masked, it stays pending
        # (PACA_IRQ_DBELL) without hard-masking CPU 3.  CPU 0 still waits 5 s ("didn't respond" at
        # 126.52); CPU 3's soft-NMI reports at its DEC entry 112.51 + 3 * 4.194304 = 125.092912
        # (TB 112.51 * 512e6 + 3 * 0x7fffffff = 64047570941, 13092 ms after the heartbeat at 112),
        # which marks it stuck: the SMP checker leaves it out at 132.
        "ipi_backtrace_doorbell_to_a_sibling",
        {"kernel": NO_RI0, "sim": {"max_time_s": 133},
         "script": [s(3, 100.5, "preempt_off", 12), s(3, 112.5, "irqs_soft_off", INF)]},
        {"rcu_stall", "hardlockup", "nmi_ipi"},
        [
            (121.52, "rcu_stall", "smp-detected", [3], 0, "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"),
            (125.092912, "hardlockup", "self-detected", [3], 3, SELF3),
        ],
        log=[
            "Sending NMI from CPU 0 to CPUs 3:",
            "watchdog: CPU 3 TB:64047570941, last heartbeat TB:57344000000 (13092ms ago)",
            "CPU 3 didn't respond to backtrace IPI, inspecting paca.",
        ],
        nmi=(0, 0, 0),
    ),
    Case(
        # A busy CPU is hard-disabled for the RI=0 rule.  CPU 2 enters an endless RTAS call at 100.5
        # (holds rtas_lock, hard-disabled, in RTAS: RI=0 probability nmi_ri0_prob.rtas = 0); CPUs 4
        # and 6 ask for one and spin soft-masked, hard-masked by the resched IPI at 111.01 (their
        # DEC entries up to 108.90 were below 10 s).  At 120 CPU 0 reports 2, 4, 6 and each takes
        # the NMI IPI at once (in RTAS / soft-masked: RI=1).  At 121.52 CPU 0 reports the RCU stall
        # and waits 3 x 5 s for backtraces none can answer: busy until 136.52, its heartbeats of 124,
        # 128, 132 missed.  The report at 120 reset the SMP checker (last_reset 120, the stuck CPUs
        # left out); CPU 0 never clears its pending bit again, so the first beat with now - 120 >=
        # 15 is 136, by CPU 1: it reports CPU 0 and IPIs it.  CPU 0 takes the reset spinning
        # hard-disabled in its tick: irqs_hard_off, probability 1 -> MSR[RI]=0:
        # "Oops: Unrecoverable System Reset" and the crash at 136 (as a "kernel" context, 0, it would
        # survive, as in cases_rcu.py rcu_backtrace_reporter_flagged).
        "ipi_busy_reporter_is_hard_disabled",
        {"kernel": {"nmi_ri0_prob": {"kernel": 0, "user": 0, "idle": 0, "preempt_off": 0, "irqs_soft_off": 0, "irqs_hard_off": 1, "rtas": 0}},
         "sim": {"max_time_s": 140}, "script": [s(c, 100.5, "rtas_call", INF) for c in (2, 4, 6)]},
        {"rcu_stall", "hardlockup", "nmi_ipi", "panic"},
        [
            (120.0, "hardlockup", "smp-detected", [2, 4, 6], 0, "watchdog: CPU 0 detected hard LOCKUP on other CPUs 2,4,6"),
            (120.0, "nmi_ipi", "ipi-report", [2], 2, "watchdog: CPU 2 Hard LOCKUP"),
            (120.0, "nmi_ipi", "ipi-report", [4], 4, "watchdog: CPU 4 Hard LOCKUP"),
            (120.0, "nmi_ipi", "ipi-report", [6], 6, "watchdog: CPU 6 Hard LOCKUP"),
            (121.52, "rcu_stall", "smp-detected", [2, 4, 6], 0, "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"),
            (136.0, "hardlockup", "smp-detected", [0], 1, "watchdog: CPU 1 detected hard LOCKUP on other CPUs 0"),
            (136.0, "nmi_ipi", "ipi-report", [0], 0, "watchdog: CPU 0 Hard LOCKUP"),
            (136.0, "nmi_ipi", "unrecoverable", [0], 0, "Oops: Unrecoverable System Reset, sig: 6 [#1]"),
            (136.0, "panic", "crash", [0], 0, "Oops: Unrecoverable System Reset, sig: 6 [#1]"),
        ],
        outcome="crash",
        crash=(136.0, "unrecoverable_system_reset", 0),
        log=["rcu: \t4-...0: (0 ticks this GP) idle=0000/1/0x4000000000000000 softirq=0/0 fqs=2102",
             "irq_soft_mask: 0x01 in_mce: 0 in_nmi: 0 current: 0 (swapper/4)",
             "watchdog: CPU 1 TB:69632000000, last SMP heartbeat TB:61440000000 (16000ms ago)"],
        nmi=(4, 0, 1),
    ),
]
# fmt: on

"""Interrupts that must be hard-masked, arriving at soft-masked CPUs (Book3S-64 lazy masking).

On Book3S-64 ``local_irq_disable()`` only sets the soft mask (``paca->irq_soft_mask =
IRQS_DISABLED``, arch/powerpc/include/asm/hw_irq.h); MSR[EE] stays on.  A maskable interrupt that
arrives meanwhile enters ``masked_interrupt`` (arch/powerpc/kernel/exceptions-64s.S, read at
torvalds/linux 002c6ca75289, the code unchanged since the v5.x interrupt rework):

* a decrementer (0x900) sets DEC to 0x7fffffff and branches to ``soft_nmi_common``: the
  watchdog's soft-NMI (``lpmsim.kernel.hardlockup``); it does **not** hard-mask;
* a doorbell (0xa00/0xe80, ``PACA_IRQ_DBELL``) or an HMI returns at once (edge-triggered /
  already handled): no hard mask;
* "Else it is one of PACA_IRQ_MUST_HARD_MASK, so hard disable and return": MSR_EE is cleared in
  SRR1 and ``PACA_IRQ_HARD_DIS`` set.  On Book3S ``PACA_IRQ_MUST_HARD_MASK`` is
  ``PACA_IRQ_EE | PACA_IRQ_PMI`` (hw_irq.h, torvalds/linux 012a9a97a8fd): an external interrupt
  (0x500/0xea0: devices, and IPIs sent through the interrupt controller) or a PMI.  A PMI is
  soft-masked only under ``powerpc_local_irq_pmu_save`` (``IRQS_PMI_DISABLED``), not by
  ``local_irq_disable``, so only external interrupts are modelled.

From then on the CPU stays hard-disabled until it re-enables interrupts
(``arch_local_irq_restore`` -> ``replay_soft_interrupts``, arch/powerpc/kernel/irq_64.c): no
decrementer reaches it, so no soft-NMI; only the SMP checker's system-reset NMI IPI can
(``CpuStates.soft_nmi_reachable`` is false while ``hard_dis``; ``set_ctx`` to a context with
interrupts on clears it).

Which interrupts are external (``PACA_IRQ_EE``) on a PowerVM LPAR:

* device interrupts (network, storage) through XIVE/XICS;
* IPIs: pseries ``dbell_or_ic_cause_ipi`` (platforms/pseries/smp.c, since 5b06d1679f2f "powerpc/pseries:
  Use doorbells even if XIVE is available", v5.9; its companion 107c55005fbd keeps XIVE for KVM
  guests only) sends a ``msgsndp`` doorbell to an SMT sibling of
  the same core (not hard-masking) and uses the interrupt controller otherwise (external:
  hard-masking).  Every IPI message goes that way: ``smp_send_reschedule``, the call-function IPI
  of ``irq_work_queue_on``, and the "safe" NMI IPI (``do_message_pass(cpu, PPC_MSG_NMI_IPI)``,
  arch/powerpc/kernel/smp.c).  The watchdog's own NMI IPIs are system resets
  (``H_SIGNAL_SYS_RESET``), not external interrupts.
* TLB flushes: on pseries radix and hash MMUs invalidations are broadcast ``tlbie`` (or hcalls),
  not IPIs, and the post-copy's page faults are the hypervisor's, invisible to the guest's MMU
  code: no TLB-flush IPIs come from the migration.

The kernel's own IPIs to a stuck CPU are sent with ``deliver(cpu)`` by the mechanism that sends
them: RCU's ``resched_cpu()``/``irq_work_queue_on()`` at the first force-quiescent-state pass
after half the stall timeout (``lpmsim.kernel.rcu_stall``, kernel/rcu/tree.c
``rcu_implicit_dynticks_qs``) and the safe backtrace IPI of an RCU stall report
(``lpmsim.kernel.backtrace``).  The backtrace IPI's sender is known (the reporting CPU): to an SMT
sibling of its core (``partition.smt``, lpmsim.hypervisor.topology) it is a doorbell from v5.9
(``Kernel.sibling_doorbells``) and does not hard-mask (``ipi(sender, cpu)``).  The GP kthread's
CPU is not modelled: ASSUMPTION, RCU's IPIs come from a CPU of another core, so they hard-mask.

Model: per vCPU, must-hard-mask interrupts arrive as a Poisson process of rate
``workload.irq_rate_hz`` (ASSUMPTION, guest/workload.py: devices plus cross-core IPIs of the
workload), drawn from the named stream ``kernel/irq``.  On entering ``irqs_soft_off`` the vCPU's
next arrival is drawn; if it comes while the vCPU is still in that section it is hard-disabled
then, or - stalled in the hypervisor at that moment - when it runs again (the interrupt stays
pending in the interrupt controller; a stalled vCPU takes nothing).  ``deliver(cpu)`` is one
interrupt sent now (the kernel's IPIs, scripted cases).  A CPU the kernel itself holds
hard-disabled (``busy``: an NMI-IPI sender, an RCU reporter spinning in its tick) leaves it
pending: those spins run in interrupt context entered with interrupts on, so it is taken as an
ordinary interrupt when the spin ends.  The arrival time is drawn afresh at each entry (the
process is memoryless; interrupts pending from a hard-disabled section are not carried over,
ASSUMPTION).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from itertools import chain

import numpy as np

from lpmsim.engine.core import Environment
from lpmsim.guest.cpustate import CpuStates, Ctx
from lpmsim.kernel.timing import Alarm

_SOFT_OFF = Ctx.IRQS_SOFT_OFF
_INF = math.inf

# The gaps to the next arrival are drawn this many at a time (``_gaps``).
BLOCK = 256


def _gaps(rng: np.random.Generator, scale: float) -> Callable[[], float]:
    """The values of ``rng.exponential(scale)``, one per call, drawn ``BLOCK`` at a time:
    ``exponential(scale, size=n)`` gives the very floats of n single calls, in order (numpy's
    ``random_exponential`` per element, the same bit generator steps), so only the time at
    which the numbers are taken from the stream differs; the stream ``kernel/irq`` is this
    object's alone (a speed change: one numpy call per ``BLOCK`` arrivals instead of one each,
    ~1 µs, at every entry into a soft-masked section)."""
    return chain.from_iterable(iter(lambda: rng.exponential(scale, size=BLOCK).tolist(), None)).__next__


class IrqArrivals:
    """Hard-masks soft-masked vCPUs when an external interrupt arrives (see the module doc)."""

    def __init__(
        self,
        env: Environment,
        states: CpuStates,
        rate_hz: float,
        rng: np.random.Generator | None,
        busy: set[int] | None = None,
        subscribe: bool = True,
    ) -> None:
        """``busy``: the CPUs the kernel holds hard-disabled (``KernelModel.busy``, read live).
        ``subscribe`` False: the owner calls ``_changed`` after every change itself (the kernel
        model, as the observer right after its own, where ``_changed`` would not return at once)."""
        if rate_hz < 0 or not math.isfinite(rate_hz):
            raise ValueError(f"irq rate must be a finite number >= 0, not {rate_hz}")
        if rate_hz > 0 and rng is None:
            raise ValueError("an irq rate > 0 needs a random stream")
        self.env = env
        self.states = states
        self.rate_hz = float(rate_hz)
        self.rng = rng
        self._gap = _gaps(rng, 1.0 / self.rate_hz) if rng is not None and self.rate_hz > 0 else None
        self.busy: set[int] = busy if busy is not None else set()
        self.smt = 0  # threads per core when sibling IPIs are doorbells (set_smt); 0: never
        self._cs = states.cpus  # the CpuState list (never replaced)
        n = len(states)
        self.due = [_INF] * n  # the next arrival in the current soft-masked section
        self.pending = [False] * n  # arrived while stalled: taken when the vCPU runs again
        self.hard_masked = 0  # transitions to hard-disabled (for tests and the summary)
        self._alarms = [Alarm(env, functools.partial(self._arrive, c)) for c in range(n)]
        # the arrival process reads no steal_frac
        if subscribe:
            states.subscribe(self._changed, steal=False)

    def set_smt(self, smt: int, doorbells: bool) -> None:
        """The partition's threads per core, and whether IPIs to SMT siblings are doorbells
        (``Kernel.sibling_doorbells``)."""
        if smt < 1:
            raise ValueError(f"smt must be >= 1, not {smt}")
        self.smt = smt if doorbells else 0

    def ipi(self, sender: int, cpu: int) -> None:
        """An IPI message from ``sender`` to ``cpu`` (pseries ``dbell_or_ic_cause_ipi``): a
        ``msgsndp`` doorbell to a sibling of the sender's core (``PACA_IRQ_DBELL``: masked, it
        stays pending without hard-masking), else through the interrupt controller (``deliver``)."""
        if self.smt and sender // self.smt == cpu // self.smt:
            return
        self.deliver(cpu)

    def deliver(self, cpu: int) -> None:
        """One must-hard-mask interrupt sent to ``cpu`` now (an IPI through the interrupt
        controller, or a device interrupt)."""
        cs = self.states.cpus[cpu]
        if cs.ctx != _SOFT_OFF or cs.hard_dis or cpu in self.busy:
            return  # taken at once (interrupts on), or the CPU is hard-disabled already
        if cs.stalled:
            self.pending[cpu] = True
        else:
            self._hard_mask(cpu)

    def _hard_mask(self, cpu: int) -> None:
        self.due[cpu] = _INF
        self.pending[cpu] = False
        self.hard_masked += 1
        self.states.set_hard_dis(cpu)

    def _changed(self, cpu: int, t: float) -> None:
        cs = self._cs[cpu]
        if cs.ctx != _SOFT_OFF:
            if self.pending[cpu] or self.due[cpu] != _INF:
                self.pending[cpu] = False
                self.due[cpu] = _INF
            return
        if cs.hard_dis:
            return
        if self.pending[cpu]:
            if not cs.stalled:
                self._hard_mask(cpu)
            return
        gap = self._gap
        if self.due[cpu] == _INF and gap is not None:  # (a rate > 0: ``self.rng.exponential(1 / rate)``)
            due = t + gap()
            self.due[cpu] = due
            self._alarms[cpu].set(due)

    def _arrive(self, cpu: int, t: float) -> None:
        due = self.due[cpu]
        if due == _INF:
            return  # the section ended before its interrupt came
        if due > t:
            self._alarms[cpu].set(due)  # a later section's arrival: wait for it
            return
        self.due[cpu] = _INF
        self.deliver(cpu)

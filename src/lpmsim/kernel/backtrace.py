"""CPU backtraces through the "safe" NMI IPI: what an RCU stall report's stack dump costs.

Mirrors, for Book3S-64 with CONFIG_NMI_IPI:

* kernel/sched/core.c ``dump_cpu_task(cpu)`` (v6.x; ``rcu_dump_cpu_stacks`` called
  ``trigger_single_cpu_backtrace`` itself before) -> ``trigger_single_cpu_backtrace`` ->
  arch/powerpc/kernel/stacktrace.c ``arch_trigger_cpumask_backtrace`` ->
  lib/nmi_backtrace.c ``nmi_trigger_cpumask_backtrace``: the calling CPU itself is dumped in place
  (``nmi_cpu_backtrace(NULL)``: ``NMI backtrace for cpu %d``); for another CPU
  ``Sending NMI from CPU %d to CPUs %*pbl:`` and ``raise_backtrace_ipi``;
* arch/powerpc/kernel/stacktrace.c ``raise_backtrace_ipi`` as rewritten by 7c6986ade69e
  ("powerpc/stacktrace: Fix spurious "stale" traces in raise_backtrace_ipi()", June 2021, in
  5.14 and the stable trees): per CPU ``smp_send_safe_nmi_ipi(cpu, handle_backtrace_ipi,
  5 * USEC_PER_SEC)``; if the target entered, wait up to another 5 s for it to clear itself from
  the mask (it prints ``NMI backtrace for cpu %d`` and its registers); if it did not enter,
  ``CPU %d didn't respond to backtrace IPI, inspecting paca.``,
  ``irq_soft_mask: 0x%02x in_mce: %d in_nmi: %d`` + (``pr_cont``) `` current: %d (%s)`` and
  ``Back trace of paca->saved_r1 (0x%016llx) (possibly stale):``;
* arch/powerpc/kernel/smp.c ``__smp_send_nmi_ipi(..., safe=true)``: the "safe" NMI is an ordinary
  IPI message (``do_message_pass(cpu, PPC_MSG_NMI_IPI)``), not a system reset, so the target takes
  it only when it can take an ordinary interrupt (running, interrupts on: the model's
  ``timer_ok``); a CPU stalled in the hypervisor takes it when the stall ends, one with interrupts
  off when it re-enables them.  The IPI goes out through ``smp_ops->cause_ipi`` (pseries
  ``dbell_or_ic_cause_ipi``): to another core an external interrupt, which hard-masks a
  soft-masked target (``PACA_IRQ_MUST_HARD_MASK``, exceptions-64s.S ``masked_interrupt``;
  ``IrqArrivals.deliver``): from then on no soft-NMI reaches the holdout, only the SMP checker's
  system reset; to an SMT sibling of the reporter's core (from v5.9) a ``msgsndp`` doorbell,
  which does not (``IrqArrivals.ipi``).  Its ``paca->irq_soft_mask`` stays ``IRQS_DISABLED`` (0x01): ``masked_interrupt``
  sets ``PACA_IRQ_HARD_DIS`` in ``irq_happened`` and clears MSR[EE] in SRR1, not the soft mask
  (``hard_irq_disable()`` would set ``IRQS_ALL_DISABLED``).  The sender spins in ``udelay(1)`` steps with interrupts
  hard-disabled (``nmi_ipi_lock_start``): the model marks it ``busy`` (no tick, no heartbeat, no
  scheduling), so its own heartbeat stops and the SMP checker may flag it.  When the sender is
  done, the hrtimers that expired meanwhile run at once (it was inside the tick, not inside the
  heartbeat callback): a late heartbeat.

The timeout is 5 s of ``udelay(1)`` steps (counted as 5 s; the loop's own overhead, which makes it
somewhat longer, is not modelled).  A responding target's backtrace takes no simulated time.
Not modelled: the system-wide NMI-IPI serialisation (``nmi_ipi_busy``) with the hard-lockup
watchdog's own NMI IPIs, the register/stack lines themselves, and the ``INFO: Stall ended during
stack backtracing.`` early exit of v6.10+.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from lpmsim.guest.cpustate import Ctx

if TYPE_CHECKING:
    from lpmsim.kernel.model import KernelModel

BACKTRACE_IPI_TIMEOUT_S = 5.0  # delay_us = 5 * USEC_PER_SEC
IRQS_DISABLED = 0x01  # arch/powerpc/include/asm/hw_irq.h
IRQS_ALL_DISABLED = 0x03  # IRQS_DISABLED | IRQS_PMI_DISABLED (hard_irq_disable())


def saved_r1(cpu: int) -> int:
    """An illustrative kernel stack pointer for ``paca->saved_r1`` (the value itself is not
    modelled: a per-CPU address in the linear map, 16-byte aligned)."""
    return 0xC000000010000000 + cpu * 0x10000 + 0x3C70


class CpuBacktraces:
    """One ``rcu_dump_cpu_stacks()`` walk at a time: the reporter dumps the holdouts in CPU order."""

    def __init__(self, m: KernelModel) -> None:
        self.m = m
        self.active = False
        self._by = -1
        self._queue: list[int] = []
        self._still: Callable[[int], bool] = lambda c: True
        self._done: Callable[[float], None] | None = None
        self._waiting: int | None = None
        self._deadline = 0.0
        self._busy = False
        self.sent = 0
        self.no_response = 0

    def dump(
        self,
        by: int,
        cpus: list[int],
        t: float,
        still_holdout: Callable[[int], bool],
        done: Callable[[float], None],
    ) -> None:
        """Dump ``cpus`` (ascending) from CPU ``by`` at ``t``; ``still_holdout(c)`` is read as the
        walk reaches CPU c (``rnp->qsmask`` under the node lock); ``done(t_end)`` at the end."""
        self.active = True
        self._by = by
        self._queue = sorted(cpus)
        self._still = still_holdout
        self._done = done
        self._busy = False
        self._next(t)

    def _next(self, t: float) -> None:
        m = self.m
        by = self._by
        while self._queue and not m.dead:
            c = self._queue.pop(0)
            if not self._still(c):
                continue
            if c == by:
                m.log.emit(t, f"NMI backtrace for cpu {c}", f"C{c}")
                continue
            m.log.emit(t, f"Sending NMI from CPU {by} to CPUs {c}:", f"C{by}")
            self.sent += 1
            # the safe NMI is an IPI message: an external interrupt to a soft-masked target of
            # another core hard-masks it (masked_interrupt), so no soft-NMI reaches it until it
            # re-enables; a doorbell to an SMT sibling does not (IrqArrivals.ipi)
            m.irq.ipi(by, c)
            if m.tok[c]:
                self._respond(c, t)
                continue
            if not self._busy:
                self._busy = True
                m.set_busy(by, True, forwarded=False)
                if m.dead:
                    return
            self._waiting = c
            self._deadline = t + BACKTRACE_IPI_TIMEOUT_S
            m.env.call_at(self._deadline, functools.partial(self._timeout, c, self._deadline))
            return
        if m.dead:
            return
        # the report ends inside the tick (re-warn time, panic_on_rcu_stall), then the reporter
        # leaves it and takes what expired meanwhile
        self.active = False
        done, self._done = self._done, None
        if done is not None:
            done(t)
        if self._busy:
            self._busy = False
            if not m.dead:
                m.set_busy(by, False, forwarded=False)

    def _respond(self, c: int, t: float) -> None:
        """``handle_backtrace_ipi`` on the target: ``nmi_cpu_backtrace(regs)``."""
        self.m.log.emit(t, f"NMI backtrace for cpu {c}", f"C{c}")

    def on_timer_change(self, t: float) -> None:
        """Some CPU's ``timer_ok`` changed: if the awaited target can take ordinary interrupts
        again, it takes the pending backtrace IPI now."""
        c = self._waiting
        m = self.m
        if c is None or not m.tok[c] or m.dead or t > self._deadline:
            return
        self._waiting = None
        self._respond(c, t)
        # continue outside the caller's state update
        self.m.env.call_at(t, functools.partial(self._next, t))

    def _timeout(self, c: int, deadline: float) -> None:
        m = self.m
        if m.dead or self._waiting != c or self._deadline != deadline:
            return
        self._waiting = None
        self.no_response += 1
        by = f"C{self._by}"
        task = m.states.current_task(c)
        m.log.emit(deadline, f"CPU {c} didn't respond to backtrace IPI, inspecting paca.", by)
        m.log.emit(
            deadline,
            f"irq_soft_mask: 0x{self._soft_mask(c):02x} in_mce: 0 in_nmi: 0 current: {task.pid} ({task.comm})",
            by,
        )
        m.log.emit(deadline, f"Back trace of paca->saved_r1 (0x{saved_r1(c):016x}) (possibly stale):", by)
        self._next(deadline)

    def _soft_mask(self, c: int) -> int:
        """``paca->irq_soft_mask``: IRQS_DISABLED when soft-masked, IRQS_ALL_DISABLED when
        hard-disabled (``hard_irq_disable()``, RTAS entry, an NMI-IPI sender), else 0."""
        m = self.m
        if c in m.busy or m.hooks.in_rtas(c):
            return IRQS_ALL_DISABLED
        ctx = m.states.cpus[c].ctx
        if ctx == Ctx.IRQS_HARD_OFF:
            return IRQS_ALL_DISABLED
        if ctx == Ctx.IRQS_SOFT_OFF:
            return IRQS_DISABLED
        return 0

"""NMI IPIs (system resets) sent by the SMP hard-lockup checker, and what the targets do.

Mirrors arch/powerpc/kernel/smp.c ``__smp_send_nmi_ipi`` / ``smp_handle_nmi_ipi`` (v6.x), the
pseries ``H_SIGNAL_SYS_RESET`` delivery (platforms/pseries/smp.c, ras.c) and
arch/powerpc/kernel/traps.c ``system_reset_exception`` / ``die`` / ``oops_end`` (v5.12+ ordering:
``nmi_exit`` before ``die``, 11cb0a25f718).

* NMI IPIs are serialised system-wide; the sender spins with interrupts hard-disabled (the model
  marks it ``busy``: no heartbeat, no tick, no scheduling), targets one after another.  The
  timeout ``smp_send_nmi_ipi(c, wd_lockup_ipi, 1000000)`` is a loop: ``while (pending) {
  nmi_ipi_unlock(); udelay(1); nmi_ipi_lock(); if (delay_us && !--delay_us) break; }``, so it
  lasts 1000000 iterations of 1 us plus the loop's own cost (``kernel.nmi_ipi_loop_overhead_ns``,
  ASSUMPTION, 100 ns: 1.1 s).
* The hypervisor injects the system reset; a target stalled in the hypervisor takes it only when
  the stall ends.  Taken within the timeout: ``smp_handle_nmi_ipi`` clears the target's pending
  bit (the sender's loop ends) and runs ``wd_lockup_ipi``: ``CPU %d Hard LOCKUP`` and ``CPU %d
  TB:%lld, last heartbeat TB:%lld (%lldms ago)``.
* If the interrupted context had MSR[RI]=0: ``system_reset_exception`` -> (``out:``)
  ``regs_is_unrecoverable`` -> ``nmi_exit(); die("Unrecoverable System Reset", regs, SIGABRT)``:
  ``__die`` prints ``Oops: Unrecoverable System Reset, sig: 6 [#1]`` and the registers, and
  ``oops_end`` returns early for trap 0x100 ("system_reset_exception handles debugger, crash dump,
  panic, for 0x100"): no ``panic_on_oops``, no crash dump, ``die`` returns.  The handler then
  returns through the NMI interrupt wrapper, which calls ``nmi_exit()`` a second time
  (``BUG_ON(!in_nmi())``), into a context whose SRR0/SRR1 the reset overwrote: the "ends up
  going BUG later" of Nicholas Piggin's unmerged "powerpc: unrecoverable system reset crash fix"
  (lore 20211130105603.2042129-1-npiggin@gmail.com).  DERIVED: that happens microseconds after
  the Oops, so the model ends the run (a crash, cause ``unrecoverable_system_reset``) at the
  Oops's time; the BUG's own lines (file:line of the build) are not printed, so the log ends with
  the Oops, as the SLES 15 SP4 log quoted in b6b1c3ce06ca does.  Before v5.8 the same check
  called ``nmi_panic(regs, "Unrecoverable System Reset")`` (``Kernel.sreset_ri0_panics``).
* Taken after the sender gave up (its pending bit was cleared): ``smp_handle_nmi_ipi`` returns 0,
  so the reset is a dump request: ``die("System Reset")``, 2 s for other CPUs to print, then
  ``nmi_panic(regs, "System Reset")`` (no kdump/fadump modelled).
* RI=0: inside RTAS entered with RI=0 (kernels before v5.19) always; otherwise with the
  scenario's per-context probability (``kernel.nmi_ri0_prob``), drawn from stream
  ``kernel/nmi``.  A ``busy`` CPU (the kernel holds it hard-disabled: a watchdog NMI-IPI sender
  spinning in ``__smp_send_nmi_ipi``, an RCU reporter spinning in its tick for the backtrace IPIs,
  ``nmi_ipi_lock_start`` -> ``hard_irq_disable()``) is in ``irqs_hard_off`` code whatever context
  the workload had: its exposure is ``nmi_ri0_prob.irqs_hard_off``.  A CPU spinning for ``rtas_lock`` is not in RTAS: its exposure is that of its
  (soft-masked) context.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from lpmsim.kernel.panic import oops_line, panic_line

if TYPE_CHECKING:
    from lpmsim.kernel.model import KernelModel

NMI_TIMEOUT_S = 1.0  # smp_send_nmi_ipi(c, wd_lockup_ipi, 1000000): the nominal timeout
NMI_DELAY_US = 1_000_000  # its delay_us: iterations of the udelay(1) loop


def nmi_ipi_timeout_s(delay_us: int, loop_overhead_ns: float) -> float:
    """How long ``__smp_send_nmi_ipi``'s wait loop runs before it gives up: ``delay_us``
    iterations of ``udelay(1)`` plus the loop's own cost each."""
    return delay_us * (1e-6 + loop_overhead_ns * 1e-9)


UNRECOVERABLE = "Unrecoverable System Reset"
SIGABRT = 6
DUMP_DELAY_S = 2.0  # mdelay(2*MSEC_PER_SEC) before nmi_panic("System Reset")


class NmiIpi:
    def __init__(self, m: KernelModel) -> None:
        self.m = m
        self.sent = 0
        self.timed_out = 0
        self.unrecoverable = 0
        self.late: set[int] = set()
        self._sender: int | None = None
        self._targets: list[int] = []
        self._idx = 0
        self._waiting: int | None = None
        self._deadline = math.inf
        self._done: Callable[[float], None] | None = None
        self.timeout_s = nmi_ipi_timeout_s(NMI_DELAY_US, m.cfg.nmi_ipi_loop_overhead_ns)

    def send_sequence(self, sender: int, targets: list[int], done: Callable[[float], None]) -> None:
        self._sender = sender
        self._targets = list(targets)
        self._idx = 0
        self._done = done
        self.m.set_busy(sender, True)
        self._next()

    def _next(self) -> None:
        m = self.m
        while not m.dead and self._idx < len(self._targets):
            c = self._targets[self._idx]
            t = m.env.now
            self.sent += 1
            if m.states.can_take_nmi(c):
                self._idx += 1
                self._take(c, t)
                continue
            self._waiting = c
            self._deadline = t + self.timeout_s
            deadline = self._deadline
            m.env.call_at(deadline, functools.partial(self._timeout, c, deadline))
            return
        if m.dead:
            return
        sender, done = self._sender, self._done
        self._sender, self._done = None, None
        assert sender is not None and done is not None
        m.set_busy(sender, False)
        done(m.env.now)

    def _timeout(self, c: int, deadline: float) -> None:
        if self.m.dead or self._waiting != c or self._deadline != deadline:
            return
        self._waiting = None
        self.timed_out += 1
        self.late.add(c)
        self.m.report(deadline, "nmi_ipi", "timeout", [c], self._sender, None)
        self._idx += 1
        self._next()

    def on_nmi_ok(self, c: int, t: float) -> None:
        """CPU c can take a system reset again (its stall ended)."""
        if self.m.dead:
            return
        if self._waiting == c and t <= self._deadline:
            self._waiting = None
            self._idx += 1
            self._take(c, t)
            self._next()
        elif c in self.late:
            self.late.discard(c)
            self._take_late(c, t)

    def _ri0(self, c: int) -> bool:
        m = self.m
        if m.hooks.in_rtas(c):
            if m.cfg.rtas_ri0:
                return True
            p = m.cfg.nmi_ri0_prob.rtas
        elif c in m.busy:
            # the kernel holds it hard-disabled (an NMI-IPI sender, an RCU reporter spinning in
            # its tick): whatever context it interrupted, it runs hard-disabled kernel code
            p = m.cfg.nmi_ri0_prob.irqs_hard_off
        else:
            p = float(getattr(m.cfg.nmi_ri0_prob, str(m.states.cpus[c].ctx)))
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        return bool(m.rng.random() < p)

    def _take(self, c: int, t: float) -> None:
        """The target took the reset in time: wd_lockup_ipi, then the RI check."""
        m = self.m
        hard = m.hard
        tbn, tbc = m.clock.tb(t), m.clock.tb(hard.tb_of(c, t))
        caller = f"C{c}"
        line = m.log.emit(t, f"watchdog: CPU {c} Hard LOCKUP", caller)
        m.log.emit(
            t, f"watchdog: CPU {c} TB:{tbn}, last heartbeat TB:{tbc} ({m.clock.ms(tbn - tbc)}ms ago)", caller
        )
        m.report(t, "nmi_ipi", "ipi-report", [c], c, line)
        if self._ri0(c):
            self.unrecoverable += 1
            if m.cfg.sreset_ri0_panics:  # before v5.8: nmi_panic(regs, "Unrecoverable System Reset")
                m.report(t, "nmi_ipi", "unrecoverable", [c], c, panic_line(UNRECOVERABLE))
                m.panic(t, UNRECOVERABLE, "unrecoverable_system_reset", c, outcome="crash")
                return
            # die() prints the Oops and returns (trap 0x100); the BUG follows at once (module doc)
            m.report(t, "nmi_ipi", "unrecoverable", [c], c, oops_line(UNRECOVERABLE, SIGABRT))
            m.crash_oops(t, UNRECOVERABLE, "unrecoverable_system_reset", c)

    def _take_late(self, c: int, t: float) -> None:
        """Arrived after the sender gave up: a dump request."""
        m = self.m
        line = m.log.emit(t, "Oops: System Reset, sig: 6 [#1]", f"C{c}")
        m.report(t, "nmi_ipi", "dump", [c], c, line)
        # not a *_panic sysctl's doing: the brief counts "NMI IPI not answered" as a crash
        m.panic(t + DUMP_DELAY_S, "System Reset", "system_reset_dump", c, outcome="crash")

"""What the guest kernel's detectors can observe about each vCPU, and the hooks to drive them.

This is the interface between the guest model (who runs what, who stalls where) and the kernel
model (lockup detectors, the migration flow).  Both sides only talk through it:

* the guest model, a scripted timeline (scenario ``script`` section) or the kernel's own flows
  (stop_machine, RTAS calls) *write* a vCPU's state with the ``set_*`` / ``note_*`` methods;
* the detectors *read* it with the predicates below and subscribe to changes, so that an
  interrupt that became due while a vCPU could not take it is delivered the moment it can.

State of one vCPU (``CpuState``):

``ctx``       the execution context: ``user``, ``kernel`` (preemptible), ``preempt_off``,
              ``irqs_soft_off`` (local_irq_disable / spin_lock_irqsave: soft-masked on Book3S-64),
              ``irqs_hard_off`` (MSR[EE]=0: firmware/RTAS, H_JOIN, low-level paths), ``idle``;
``hard_dis``  hard-disabled while soft-masked (``PACA_IRQ_HARD_DIS``): an interrupt that must be
              hard-masked (external interrupt, PMI) arrived in an ``irqs_soft_off`` section and the
              masked-interrupt entry cleared MSR[EE] (``lpmsim.kernel.irq_arrivals``); cleared when
              the CPU re-enables interrupts (leaves the irqs-off contexts);
``stalled``   stalled in the hypervisor (a demand fault on a page not yet migrated, or suspended):
              it executes nothing and takes no interrupt of any kind, not even a system reset
              until the stall ends;
``spinning``  name of the spinlock it is waiting for (``None`` if not spinning); a spinning vCPU
              executes nothing useful, in the interrupt state of its ``ctx``;
``task``      the task current on it (for ``[comm:pid]`` in log lines);
``last_qs``   time of its last RCU quiescent state (user mode, idle, or a context switch);
``last_switch`` time the scheduler last switched tasks on it (the soft-lockup stopper needs one);
``steal_frac`` share of its time spent stalled in the hypervisor while it is not ``stalled`` as a
              whole: the fluid guest model's episodes of many short faults (what the dispatch trace
              log, ``lpmsim.kernel.dtl``, adds up for it at that rate).

Predicates (kernel-facts sections 1-4):

* ``is_stalled``          — in the hypervisor;
* ``can_take_timer``      — running (not stalled) with interrupts enabled (ctx not an irqs-off one);
* ``soft_nmi_reachable``  — running, interrupts soft-disabled but not hard-disabled (``hard_dis``
                            unset): a decrementer interrupt would enter the powerpc soft-NMI path
                            (watchdog.c);
* ``can_take_nmi``        — not stalled (a system reset is taken in any context but a stall);
* ``can_schedule``        — running and not in ``preempt_off`` or an irqs-off context;
* ``qs_since(t)``         — has passed an RCU quiescent state at or after time t.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Ctx(StrEnum):
    USER = "user"
    KERNEL = "kernel"
    PREEMPT_OFF = "preempt_off"
    IRQS_SOFT_OFF = "irqs_soft_off"
    IRQS_HARD_OFF = "irqs_hard_off"
    IDLE = "idle"


IRQS_OFF = frozenset({Ctx.IRQS_SOFT_OFF, Ctx.IRQS_HARD_OFF})
NO_SCHEDULE = frozenset({Ctx.PREEMPT_OFF, Ctx.IRQS_SOFT_OFF, Ctx.IRQS_HARD_OFF})
QUIESCENT = frozenset({Ctx.USER, Ctx.IDLE})


@dataclass(frozen=True)
class Task:
    comm: str
    pid: int

    def __str__(self) -> str:
        return f"{self.comm}:{self.pid}"


@dataclass(slots=True)
class CpuState:
    cpu: int
    ctx: Ctx = Ctx.IDLE
    stalled: bool = False
    spinning: str | None = None
    task: Task = field(default_factory=lambda: Task("swapper/0", 0))
    last_qs: float = 0.0
    last_switch: float = 0.0
    steal_frac: float = 0.0
    hard_dis: bool = False


@dataclass
class BlockedTask:
    """A task in D state (uninterruptible sleep): what the hung-task detector scans."""

    task: Task
    since: float
    on: str


Observer = Callable[[int, float], None]
"""Called with (cpu, time) after any change of that vCPU's state (``CpuStates.subscribe``)."""


class CpuStates:
    """The observable state of every vCPU, with change notification."""

    skip_steal_only = True
    """A change of ``steal_frac`` alone is told only to the observers that read it (``subscribe``
    with ``steal=True``); False tells every observer, as a check (tests/guest/test_fluid_speed.py):
    the results are the same."""

    def __init__(self, ncpus: int, now: Callable[[], float]) -> None:
        self._now = now
        self.cpus = [CpuState(cpu=i, task=Task(f"swapper/{i}", 0)) for i in range(ncpus)]
        self.blocked: dict[int, BlockedTask] = {}
        self._observers: list[Observer] = []
        self._steal_observers: list[Observer] = []  # those told of a change of steal_frac alone

    def __len__(self) -> int:
        return len(self.cpus)

    def subscribe(self, fn: Observer, steal: bool = True) -> None:
        """Call ``fn(cpu, t)`` after every change of a vCPU's state.  ``steal=False``: not after a
        change of ``steal_frac`` alone, for an observer whose reaction to it would do nothing (it
        reads no ``steal_frac``, and a change that moves none of what it reads leaves it as it is)."""
        self._observers.append(fn)
        if steal:
            self._steal_observers.append(fn)

    def _changed(self, cpu: int) -> None:
        t = self._now()
        for fn in self._observers:
            fn(cpu, t)

    def _steal_changed(self, cpu: int) -> None:
        t = self._now()
        for fn in self._steal_observers if self.skip_steal_only else self._observers:
            fn(cpu, t)

    # -- predicates --------------------------------------------------------------------------
    def is_stalled(self, cpu: int) -> bool:
        return self.cpus[cpu].stalled

    def can_take_timer(self, cpu: int) -> bool:
        c = self.cpus[cpu]
        return not c.stalled and c.ctx not in IRQS_OFF

    def soft_nmi_reachable(self, cpu: int) -> bool:
        c = self.cpus[cpu]
        return not c.stalled and c.ctx == Ctx.IRQS_SOFT_OFF and not c.hard_dis

    def can_take_nmi(self, cpu: int) -> bool:
        return not self.cpus[cpu].stalled

    def can_schedule(self, cpu: int) -> bool:
        c = self.cpus[cpu]
        return not c.stalled and c.spinning is None and c.ctx not in NO_SCHEDULE

    def qs_since(self, cpu: int, t: float) -> bool:
        return self.cpus[cpu].last_qs >= t

    def current_task(self, cpu: int) -> Task:
        return self.cpus[cpu].task

    # -- writers -----------------------------------------------------------------------------
    # Every change is told through ``_changed`` (a subclass may watch it: tests do).
    def set_ctx(self, cpu: int, ctx: Ctx) -> None:
        c = self.cpus[cpu]
        if c.ctx == ctx:
            return
        c.ctx = ctx
        if ctx not in IRQS_OFF:
            c.hard_dis = False  # arch_local_irq_restore(): interrupts on, MSR[EE] set again
        if ctx in QUIESCENT and not c.stalled:
            c.last_qs = self._now()
        self._changed(cpu)

    def set_hard_dis(self, cpu: int) -> None:
        """A must-hard-mask interrupt was taken while soft-masked: MSR[EE] cleared and
        ``PACA_IRQ_HARD_DIS`` set until interrupts are re-enabled (``set_ctx`` to a context with
        interrupts on clears it).  Only meaningful in ``irqs_soft_off``; ignored elsewhere."""
        c = self.cpus[cpu]
        if c.hard_dis or c.ctx != Ctx.IRQS_SOFT_OFF:
            return
        c.hard_dis = True
        self._changed(cpu)

    def set_stalled(self, cpu: int, stalled: bool) -> None:
        c = self.cpus[cpu]
        if c.stalled == stalled:
            return
        c.stalled = stalled
        self._changed(cpu)

    def set_steal_frac(self, cpu: int, frac: float) -> None:
        """Share (0..1) of the vCPU's time from now on spent stalled in the hypervisor in short
        faults that are not shown one by one (fluid mode); 0 = none."""
        c = self.cpus[cpu]
        f = float(frac)  # min(max(f, 0.0), 1.0) without the two calls (the same value, NaN and -0.0 too)
        if f < 0.0:
            f = 0.0
        elif f > 1.0:
            f = 1.0
        if c.steal_frac == f:
            return
        c.steal_frac = f
        if self._steal_observers or not self.skip_steal_only:
            self._steal_changed(cpu)

    def set_spinning(self, cpu: int, lock: str | None) -> None:
        c = self.cpus[cpu]
        if c.spinning == lock:
            return
        c.spinning = lock
        self._changed(cpu)

    def set_task(self, cpu: int, task: Task) -> None:
        """A context switch to ``task``: also a quiescent state for RCU."""
        c = self.cpus[cpu]
        now = self._now()
        c.task = task
        c.last_switch = now
        c.last_qs = now
        self._changed(cpu)

    def note_qs(self, cpu: int) -> None:
        self.cpus[cpu].last_qs = self._now()
        self._changed(cpu)

    def block_task(self, task: Task, on: str) -> None:
        self.blocked[task.pid] = BlockedTask(task, self._now(), on)

    def unblock_task(self, pid: int) -> None:
        self.blocked.pop(pid, None)

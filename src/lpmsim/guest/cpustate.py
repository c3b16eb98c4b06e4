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

States compose (issue 13, section 6).  A vCPU can be stalled for several reasons at once and held
in a context by kernel code while the workload would be elsewhere, so every writer names itself
(``owner``; the guest model, the default, is ``"guest"``):

* **stalled** is held by a set of owners: ``set_stalled(cpu, True, owner)`` adds the owner,
  ``set_stalled(cpu, False, owner)`` removes it, and the vCPU is stalled while any owner holds it.
  Owners: ``"guest"`` (a demand fault, a published fluid episode), ``"suspend"`` (the partition
  suspended by ``ibm,suspend-me``, ``kernel/mobility.py``), ``"script#<i>"`` (entry i of the
  scenario's script), and the like.  Each owner's hold is a flag, not a count: the guest model
  sets and clears its own as a boolean, as it always did.  So a fault served during a scripted
  40 s stall ends the fault's hold only, and the vCPU stays stalled until the script lets go.
* **ctx** is the workload's context (owner ``"guest"``) unless kernel code holds the vCPU:
  ``set_ctx(cpu, ctx, owner)`` with any other owner is a hold (``"script#<i>"``, ``"bug"``,
  ``"rtas"``, ``"stop_machine"``), ``set_ctx(cpu, None, owner)`` (or ``release_ctx``) lets go.
  While any hold is on, the context is the **most restrictive** held one (order ``idle`` <
  ``user`` < ``kernel`` < ``preempt_off`` < ``irqs_soft_off`` < ``irqs_hard_off``; of equals, the
  latest).  Why: the holder's code is what runs on the CPU, so the workload's transitions there
  do not happen — they are kept (the workload's context is restored when the last hold goes)
  but change nothing a detector sees; and kernel sections nest — ``preempt_disable``, then
  ``local_irq_save``, then ``hard_irq_disable`` (``enter_rtas``, ``multi_cpu_stop``'s
  MULTI_STOP_DISABLE_IRQ) — where an inner section cannot relax the outer's mask
  (``local_irq_restore`` puts back the state saved on entry), so the CPU is in the union of the
  masks held, the most restrictive context.  A script's ``irqs_hard_off`` therefore holds whatever
  the workload does, and an RTAS call inside it leaves the CPU hard-disabled after it returns.
  The guest model reads its own context as ``guest_ctx`` (what it restores after its RTAS call,
  what a lock it takes nests in), never a holder's.
* **task**: a holder may name the task it runs (``set_task(cpu, task, owner)``): the current task
  is the latest holder's, else the workload's.  A workload context switch on a held vCPU is kept
  for later and is no context switch (no RCU quiescent state: the holder's code runs there);
  when the last holder with a task lets go, the workload's task comes back, a context switch.
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

GUEST = "guest"
"""The workload's own writes (the guest model): the default owner of every writer."""

STRICTNESS = {
    Ctx.IDLE: 0,
    Ctx.USER: 1,
    Ctx.KERNEL: 2,
    Ctx.PREEMPT_OFF: 3,
    Ctx.IRQS_SOFT_OFF: 4,
    Ctx.IRQS_HARD_OFF: 5,
}
"""How restrictive a context is: of the contexts held on a vCPU, the highest is its context."""


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
    hard_dis: bool = False  # PACA_IRQ_HARD_DIS: hard-masked by an interrupt while soft-masked
    guest_ctx: Ctx = Ctx.IDLE  # the workload's context (shown when nothing holds the vCPU)
    guest_task: Task | None = None  # the workload's task while a holder's is shown
    stall_by: set[str] = field(default_factory=set)  # owners holding it stalled
    holds: dict[str, Ctx] = field(default_factory=dict)  # owner -> context held (not the guest)
    held_task: dict[str, Task] = field(default_factory=dict)  # owner -> its task (not the guest)


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
        # publish / unpublish call the observers themselves unless a subclass watches _changed
        self._direct = type(self)._changed is CpuStates._changed

    def __len__(self) -> int:
        return len(self.cpus)

    def subscribe(self, fn: Observer, steal: bool = True) -> None:
        """Call ``fn(cpu, t)`` after every change of a vCPU's state.  ``steal=False``: not after a
        change of ``steal_frac`` alone, for an observer whose reaction to it would do nothing (it
        reads no ``steal_frac``, and a change that moves none of what it reads leaves it as it is)."""
        self._observers.append(fn)
        if steal:
            self._steal_observers.append(fn)

    def take_last(self, fn: Observer) -> bool:
        """Take ``fn`` out of the observers if it is the last one subscribed and not told of
        steal-only changes: the caller, subscribing next with ``steal=False``, then calls it
        itself first, where it would have been called.  Returns whether it was taken."""
        obs = self._observers
        if obs and obs[-1] == fn and fn not in self._steal_observers:
            obs.pop()
            return True
        return False

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
    # Every change is told through ``_changed`` (a subclass may watch it: tests do).  ``set_ctx``
    # and ``set_stalled`` also take ``t``, the current time, from a caller that knows it (the exact
    # guest's segment loop: ~1.8 million context moves in a run of ``default-explicit``, and a
    # stall per demand fault): then the observers are called straight from the writer with it
    # where no subclass watches ``_changed`` (as in ``publish``), instead of each reading the clock.
    def set_ctx(self, cpu: int, ctx: Ctx | None, owner: str = GUEST, t: float | None = None) -> None:
        """The workload's context (``owner`` "guest"), or a hold of ``ctx`` by ``owner`` (None: the
        hold ends).  The vCPU's context: the most restrictive held, else the workload's.   ``t``:
        the current time, if the caller knows it (see above)."""
        c = self.cpus[cpu]
        if owner == GUEST:
            if ctx is None:
                raise ValueError("the guest's context cannot be released")
            if c.guest_ctx == ctx:
                return  # (with no hold on, ctx is guest_ctx)
            c.guest_ctx = ctx
            if c.holds:
                return  # kept for when the holds end
            eff = ctx
        else:
            if ctx is None:
                if c.holds.pop(owner, None) is None:
                    return
            else:
                if c.holds.get(owner) == ctx:
                    return
                c.holds.pop(owner, None)
                c.holds[owner] = ctx  # the latest last (ties go to it)
            eff = self._held_ctx(c)
        if c.ctx == eff:
            return
        c.ctx = eff
        if eff not in IRQS_OFF:
            c.hard_dis = False  # arch_local_irq_restore(): interrupts on, MSR[EE] set again
        if eff in QUIESCENT and not c.stalled:
            c.last_qs = self._now() if t is None else t
        if t is not None and self._direct:
            for fn in self._observers:
                fn(cpu, t)
        else:
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

    def release_ctx(self, cpu: int, owner: str) -> None:
        """``owner``'s hold of the vCPU ends: its context and its task (``set_task``) go."""
        self.set_ctx(cpu, None, owner)
        c = self.cpus[cpu]
        if owner in c.held_task:
            self._drop_task(c, owner)

    @staticmethod
    def _held_ctx(c: CpuState) -> Ctx:
        if not c.holds:
            return c.guest_ctx
        best = c.guest_ctx
        rank = -1
        for ctx in c.holds.values():
            r = STRICTNESS[ctx]
            if r >= rank:
                best, rank = ctx, r
        return best

    def set_stalled(self, cpu: int, stalled: bool, owner: str = GUEST, t: float | None = None) -> None:
        """``owner`` holds the vCPU stalled (True) or lets go (False); stalled while any holds.
        ``t``: the current time, if the caller knows it (see above)."""
        c = self.cpus[cpu]
        by = c.stall_by
        if stalled:
            if owner in by:
                return
            by.add(owner)
            if c.stalled:
                return  # already stalled for another reason
            c.stalled = True
        else:
            if owner not in by:
                return
            by.discard(owner)
            if by:
                return  # still stalled for another reason
            c.stalled = False
        if t is not None and self._direct:
            for fn in self._observers:
                fn(cpu, t)
        else:
            self._changed(cpu)

    def stalled_by(self, cpu: int) -> frozenset[str]:
        """The owners holding vCPU ``cpu`` stalled."""
        return frozenset(self.cpus[cpu].stall_by)

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

    # -- the fluid guest's combined writes ---------------------------------------------------
    # A published episode moves several fields at once.  These write them as the single writers
    # would, one after another in the same order, and tell the observers after each write that
    # changed something, exactly where that writer would (``_steal_changed`` / ``_changed``):
    # the detectors react to each intermediate state (a vCPU enters its context, then stalls), so
    # nothing is merged; what goes is the calls of the writers that change nothing (most of them:
    # a stall of a user-mode episode moves ``stalled`` alone).  The state is read again after every
    # notification (an observer may write it).  tests/guest/test_publish_equivalence.py compares
    # them with the single writes on random states.
    def publish(
        self,
        cpu: int,
        steal_frac: float,
        ctx: Ctx,
        spinning: str | None,
        stalled: bool,
        t: float | None = None,
    ) -> None:
        """``set_steal_frac(steal_frac)``, ``set_ctx(ctx)``, ``set_spinning(spinning)``,
        ``set_stalled(stalled)``, all as the workload (owner "guest"), in this order.  ``t``: the
        time now, from a caller that knows it (the fluid guest's ``env.now``: what ``now()``
        returns); None reads it."""
        c = self.cpus[cpu]
        # _changed(cpu), inline where no subclass watches it: the time is read once (nothing
        # moves the clock inside this call) and each observer called straight from here
        obs = self._observers if self._direct else None
        if t is None:
            t = self._now()
        f = float(steal_frac)  # set_steal_frac
        if f < 0.0:
            f = 0.0
        elif f > 1.0:
            f = 1.0
        if c.steal_frac != f:
            c.steal_frac = f
            if self._steal_observers or not self.skip_steal_only:
                self._steal_changed(cpu)
        if c.guest_ctx != ctx:  # set_ctx(ctx, GUEST)
            c.guest_ctx = ctx
            if not c.holds and c.ctx != ctx:
                c.ctx = ctx  # the end of set_ctx once the shown context changes
                if ctx not in IRQS_OFF:
                    c.hard_dis = False
                if ctx in QUIESCENT and not c.stalled:
                    c.last_qs = t
                if obs is None:
                    self._changed(cpu)
                else:
                    for fn in obs:
                        fn(cpu, t)
        if c.spinning != spinning:  # set_spinning
            c.spinning = spinning
            if obs is None:
                self._changed(cpu)
            else:
                for fn in obs:
                    fn(cpu, t)
        by = c.stall_by  # set_stalled(stalled, GUEST)
        if stalled:
            if GUEST not in by:
                by.add(GUEST)
                if not c.stalled:
                    c.stalled = True
                    if obs is None:
                        self._changed(cpu)
                    else:
                        for fn in obs:
                            fn(cpu, t)
        elif GUEST in by:
            by.discard(GUEST)
            if not by:
                c.stalled = False
                if obs is None:
                    self._changed(cpu)
                else:
                    for fn in obs:
                        fn(cpu, t)

    def unpublish(self, cpu: int, ctx: Ctx, t: float | None = None) -> None:
        """``set_steal_frac(0.0)``, ``set_stalled(False)``, ``set_spinning(None)``, ``set_ctx(ctx)``,
        all as the workload (owner "guest"), in this order (``t`` as in ``publish``)."""
        c = self.cpus[cpu]
        obs = self._observers if self._direct else None  # as in publish
        if t is None:
            t = self._now()
        if c.steal_frac != 0.0:  # set_steal_frac(0.0)
            c.steal_frac = 0.0
            if self._steal_observers or not self.skip_steal_only:
                self._steal_changed(cpu)
        by = c.stall_by  # set_stalled(False, GUEST)
        if GUEST in by:
            by.discard(GUEST)
            if not by:
                c.stalled = False
                if obs is None:
                    self._changed(cpu)
                else:
                    for fn in obs:
                        fn(cpu, t)
        if c.spinning is not None:  # set_spinning(None)
            c.spinning = None
            if obs is None:
                self._changed(cpu)
            else:
                for fn in obs:
                    fn(cpu, t)
        if c.guest_ctx != ctx:  # set_ctx(ctx, GUEST)
            c.guest_ctx = ctx
            if not c.holds and c.ctx != ctx:
                c.ctx = ctx  # the end of set_ctx once the shown context changes
                if ctx not in IRQS_OFF:
                    c.hard_dis = False
                if ctx in QUIESCENT and not c.stalled:
                    c.last_qs = t
                if obs is None:
                    self._changed(cpu)
                else:
                    for fn in obs:
                        fn(cpu, t)

    def set_task(self, cpu: int, task: Task, owner: str = GUEST) -> None:
        """A context switch to ``task``: also a quiescent state for RCU.  From a holder
        (``owner`` not "guest"): the task its code runs as, until ``release_ctx``; from the
        workload while a holder's task is shown: kept for later, no switch."""
        c = self.cpus[cpu]
        if owner == GUEST:
            if c.held_task:
                c.guest_task = task
                return
        else:
            if not c.held_task:
                c.guest_task = c.task
            c.held_task.pop(owner, None)
            c.held_task[owner] = task
        self._switch(cpu, c, task)

    def _switch(self, cpu: int, c: CpuState, task: Task) -> None:
        now = self._now()
        c.task = task
        c.last_switch = now
        c.last_qs = now
        self._changed(cpu)

    def _drop_task(self, c: CpuState, owner: str) -> None:
        tasks = c.held_task
        shown = next(reversed(tasks.values()))
        del tasks[owner]
        if tasks:
            task = next(reversed(tasks.values()))
        else:
            task = c.guest_task if c.guest_task is not None else c.task
            c.guest_task = None
        if task != shown:
            self._switch(c.cpu, c, task)

    def note_qs(self, cpu: int) -> None:
        self.cpus[cpu].last_qs = self._now()
        self._changed(cpu)

    def block_task(self, task: Task, on: str) -> None:
        self.blocked[task.pid] = BlockedTask(task, self._now(), on)

    def unblock_task(self, pid: int) -> None:
        self.blocked.pop(pid, None)

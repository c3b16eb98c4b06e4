"""How the kernel model drives the vCPUs: stop_machine, RTAS calls, freezing user tasks.

``GuestHooks`` is the protocol; the guest model (issue 3) provides the real implementation (its
RTAS calls touch firmware memory that may be missing and stall).  ``DefaultGuestHooks`` drives
``CpuStates`` directly:

* ``stop_machine(cpus)`` (kernel/stop_machine.c ``stop_machine_cpuslocked``, ``multi_cpu_stop``,
  v5.x-v6.12): each CPU arrives when its stopper thread can run (``can_schedule``, and not
  ``busy``: a CPU the kernel itself holds hard-disabled - an RCU stall reporter spinning in its
  tick for the backtrace IPIs, a watchdog NMI-IPI sender - runs nothing else until the spin ends,
  its stopper included).  An arrived CPU spins in MULTI_STOP_PREPARE in its stopper thread
  ``migration/N`` (current task; pid ``stopper_pid``) with interrupts on until the last one
  arrives: it takes timer interrupts (the watchdog hrtimers run, so heartbeats go on), passes RCU
  quiescent states where the version has ``rcu_momentary_dyntick_idle()`` on every pass of the
  loop (``Kernel.stop_machine_rcu_qs``: 366237e7b083, v5.5, until c861cac950fb moved it under
  ``curstate > MULTI_STOP_PREPARE`` for v6.14, no stable backport found; the CPUs in ``rendezvous``), but schedules nothing else: the soft-lockup feed (``softlockup_fn``, itself a
  stopper job queued with ``stop_one_cpu_nowait``) and kworkers wait.  Its context is
  ``preempt_off`` (no other task runs).  No ``touch_nmi_watchdog()`` yet: the loop touches only
  once ``curstate > MULTI_STOP_PREPARE``.  A straggler holding the rendezvous past the soft-lockup
  threshold thus gets every arrived CPU reported ``[migration/N:pid]``, and their workqueue pools
  stuck.  Once all have arrived (MULTI_STOP_DISABLE_IRQ) every CPU is hard-disabled — the
  returned event fires then; an arrived CPU that is ``busy`` at that moment (it reports an RCU
  stall from its tick) acks the state change only when its spin ends, so the event waits for it.  ``release_machine()`` restores the contexts and tasks they had.
* ``rtas_call(cpu, base_s)`` (arch/powerpc/kernel/rtas.c ``rtas_call``): takes the global
  ``rtas_lock`` with ``raw_spin_lock_irqsave`` (v5.x: ``lock_rtas()`` = ``local_irq_save`` +
  ``arch_spin_lock``): a CPU waiting for it spins *soft*-masked (``irqs_soft_off``, so the
  soft-NMI can reach it and an external interrupt hard-masks it, ``lpmsim.kernel.irq_arrivals``;
  its RI=0 exposure is that of any soft-masked CPU).  Only the holder is hard-disabled:
  ``do_enter_rtas()`` (v6.x; ``enter_rtas`` called from ``rtas_call`` in v5.x) runs
  ``hard_irq_disable()`` once the lock is held, then firmware with MSR[EE]=0 for ``base_s``
  (no memory stalls here), returns.  ``inf`` never returns.  ``in_rtas`` is true for the holder
  only.
* ``freeze_user`` / ``thaw_user``: recorded only.

Injected kernel bugs (``lpmsim.bugs``) take vCPUs away for ever (``claimed``): an RTAS call asked
for on such a CPU runs on the lowest-numbered CPU not claimed (ASSUMPTION: the scheduler's load
balancer moves drmgr off a CPU that never schedules again).  ``in_stop_machine`` and the
``release_listeners`` (called with a CPU when stop_machine or an RTAS call lets go of it) tell the
injector when a CPU runs ordinary kernel code again.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from lpmsim.engine.core import Environment, Event
from lpmsim.guest.cpustate import CpuStates, Ctx, Task


def stopper_pid(cpu: int) -> int:
    """pid of migration/<cpu> (ASSUMPTION: per-CPU kthreads allocated in blocks of 6)."""
    return 12 + 6 * cpu


def stopper_task(cpu: int) -> Task:
    """The CPU's stopper thread (kernel/stop_machine.c ``cpu_stop_threads``: ``migration/%u``)."""
    return Task(f"migration/{cpu}", stopper_pid(cpu))


RTAS_LOCK = "rtas_lock"


class GuestHooks(Protocol):
    rendezvous: set[int]
    """CPUs spinning in ``multi_cpu_stop``'s MULTI_STOP_PREPARE (arrived, waiting for the others)."""
    busy: set[int]
    """CPUs the kernel holds hard-disabled (``KernelModel.busy``): their stoppers cannot run."""

    def busy_changed(self, cpu: int) -> None: ...

    def rtas_call(self, cpu: int, base_s: float) -> Event: ...

    def in_rtas(self, cpu: int) -> bool: ...

    def stop_machine(self, cpus: Iterable[int]) -> Event: ...

    def release_machine(self) -> None: ...

    def freeze_user(self) -> None: ...

    def thaw_user(self) -> None: ...


class DefaultGuestHooks:
    """Drives ``CpuStates`` directly (no guest model)."""

    def __init__(self, env: Environment, states: CpuStates) -> None:
        self.env = env
        self.states = states
        self._rtas_cpus: set[int] = set()
        self._rtas_holder: int | None = None
        self._rtas_queue: deque[tuple[int, float, Event, Ctx]] = deque()
        self._stop_waiting: set[int] = set()
        self._stop_event: Event | None = None
        self._stop_cpus: list[int] = []
        # CPUs arrived at the rendezvous, held until release_machine(), in arrival order
        self._held: dict[int, None] = {}
        self.rendezvous: set[int] = set()
        self.busy: set[int] = set()  # replaced by KernelModel.busy
        self.frozen = False
        self.claimed: set[int] = set()
        self.release_listeners: list[Callable[[int], None]] = []
        # waits only on CPUs that cannot schedule, which steal_frac does not change
        states.subscribe(self._changed, steal=False)

    def runnable_cpu(self, cpu: int) -> int:
        """Where a task bound for ``cpu`` runs: there, unless a bug took that CPU."""
        if cpu not in self.claimed:
            return cpu
        return next((c for c in range(len(self.states)) if c not in self.claimed), cpu)

    def in_stop_machine(self, cpu: int) -> bool:
        """CPU ``cpu`` runs its stopper: arrived at the rendezvous, or held until release_machine()."""
        if cpu in self._held:
            return True
        return self._stop_event is not None and cpu in self._stop_cpus and cpu not in self._stop_waiting

    def _released(self, cpu: int) -> None:
        for fn in list(self.release_listeners):
            fn(cpu)

    # -- RTAS ------------------------------------------------------------------------------------
    def in_rtas(self, cpu: int) -> bool:
        return cpu in self._rtas_cpus

    def rtas_call(self, cpu: int, base_s: float) -> Event:
        cpu = self.runnable_cpu(cpu)
        done = self.env.event()
        prev = self.states.cpus[cpu].ctx
        if self._rtas_holder is None:
            self._rtas_enter(cpu, base_s, done, prev)
        else:
            # raw_spin_lock_irqsave: soft-masked while spinning (hard-disabled only if it was)
            self.states.set_ctx(
                cpu, Ctx.IRQS_HARD_OFF if prev == Ctx.IRQS_HARD_OFF else Ctx.IRQS_SOFT_OFF, "rtas"
            )
            self.states.set_spinning(cpu, RTAS_LOCK)
            self._rtas_queue.append((cpu, base_s, done, prev))
        return done

    def _rtas_enter(self, cpu: int, base_s: float, done: Event, prev: Ctx) -> None:
        self._rtas_holder = cpu
        self._rtas_cpus.add(cpu)
        self.states.set_ctx(cpu, Ctx.IRQS_HARD_OFF, "rtas")  # do_enter_rtas(): hard_irq_disable()
        self.states.set_spinning(cpu, None)
        if math.isfinite(base_s):
            self.env.call_at(self.env.now + base_s, lambda: self._rtas_exit(cpu, done, prev))

    def _rtas_exit(self, cpu: int, done: Event, prev: Ctx) -> None:
        self._rtas_cpus.discard(cpu)
        self._rtas_holder = None
        self.states.set_ctx(cpu, None, "rtas")  # the hold ends (prev: what it was, now the guest's)
        done.succeed()
        if self._rtas_queue:
            nxt = self._rtas_queue.popleft()
            self._rtas_enter(*nxt)
        self._released(cpu)

    # -- stop_machine ----------------------------------------------------------------------------
    def stop_machine(self, cpus: Iterable[int]) -> Event:
        ev = self.env.event()
        self._stop_event = ev
        self._stop_cpus = list(cpus)
        self._stop_waiting = {c for c in self._stop_cpus if not self._stopper_runs(c)}
        for c in self._stop_cpus:
            if c not in self._stop_waiting:
                self._arrive(c)
        self._try_complete_stop()
        return ev

    def _arrive(self, c: int) -> None:
        """CPU c's stopper runs ``multi_cpu_stop``: MULTI_STOP_PREPARE, interrupts on."""
        st = self.states
        self._held[c] = None
        self.rendezvous.add(c)
        st.set_task(c, stopper_task(c), "stop_machine")
        st.set_ctx(c, Ctx.PREEMPT_OFF, "stop_machine")

    def _stopper_runs(self, cpu: int) -> bool:
        """The CPU's stopper thread can run: it can schedule and the kernel does not hold it."""
        return cpu not in self.busy and self.states.can_schedule(cpu)

    def _changed(self, cpu: int, _t: float) -> None:
        if cpu in self._stop_waiting and self._stopper_runs(cpu):
            self._stop_waiting.discard(cpu)
            self._arrive(cpu)
            self._try_complete_stop()

    def busy_changed(self, cpu: int) -> None:
        """The kernel took CPU ``cpu`` for a hard-disabled spin, or let it go."""
        if self._stop_event is None or cpu in self.busy:
            return
        if cpu in self._stop_waiting:
            self._changed(cpu, self.env.now)
        else:
            self._try_complete_stop()  # an arrived CPU acks MULTI_STOP_DISABLE_IRQ now

    def _try_complete_stop(self) -> None:
        ev = self._stop_event
        if ev is None or self._stop_waiting:
            return
        if any(c in self.busy for c in self._stop_cpus):
            return  # an arrived CPU spinning in its tick acks the state change when it ends
        self._stop_event = None
        # the last one to ack MULTI_STOP_PREPARE moves everyone to MULTI_STOP_DISABLE_IRQ
        for c in self._stop_cpus:
            self.rendezvous.discard(c)
            self.states.set_ctx(c, Ctx.IRQS_HARD_OFF, "stop_machine")
        ev.succeed()

    def release_machine(self) -> None:
        for c in self._held:
            # the hold ends (what else holds it shows) and the stopper thread sleeps again
            self.states.release_ctx(c, "stop_machine")
        released, self._held = list(self._held), {}
        for c in released:
            self._released(c)

    # -- freezer ---------------------------------------------------------------------------------
    def freeze_user(self) -> None:
        self.frozen = True

    def thaw_user(self) -> None:
        self.frozen = False


class GuestRtas(Protocol):
    """What a guest model provides (issue 3): RTAS calls and the freezer."""

    def rtas_call(self, cpu: int, base_s: float) -> Event: ...

    def freeze_user(self) -> None: ...

    def thaw_user(self) -> None: ...


class AdaptedGuestHooks(DefaultGuestHooks):
    """The guest model's RTAS calls and freezer, the default stop_machine; tracks who is in RTAS."""

    def __init__(self, env: Environment, states: CpuStates, guest: GuestRtas, rtas: bool = True) -> None:
        super().__init__(env, states)
        self.guest = guest
        self.guest_rtas = rtas

    def rtas_call(self, cpu: int, base_s: float) -> Event:
        if not self.guest_rtas:
            return super().rtas_call(cpu, base_s)
        cpu = self.runnable_cpu(cpu)
        ev = self.guest.rtas_call(cpu, base_s)
        self._rtas_cpus.add(cpu)
        ev.add_callback(lambda _e: self._rtas_done(cpu))
        return ev

    def in_rtas(self, cpu: int) -> bool:
        # a CPU still spinning on rtas_lock has not entered the firmware
        return cpu in self._rtas_cpus and self.states.cpus[cpu].spinning != RTAS_LOCK

    def _rtas_done(self, cpu: int) -> None:
        self._rtas_cpus.discard(cpu)
        self._released(cpu)

    def freeze_user(self) -> None:
        self.frozen = True
        self.guest.freeze_user()

    def thaw_user(self) -> None:
        self.frozen = False
        self.guest.thaw_user()

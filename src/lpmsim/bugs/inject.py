"""Put real kernel bugs into the guest at their times: the ground truth detectors are scored on.

At a bug's time its vCPU(s) are taken away from the workload (``GuestBase.claim``) and put, for
ever, into the state the bug leaves them in (``CpuStates``); the detectors then see them exactly
as they see any other CPU:

* ``irqs_soft_off_spin`` — ``local_irq_disable(); for (;;) cpu_relax();``: ctx ``irqs_soft_off``
  (soft-masked, Book3S-64 lazy masking), task ``bug/<cpu>``;
* ``irqs_hard_off_spin`` — the same loop with MSR[EE]=0 (``hard_irq_disable()``): ctx
  ``irqs_hard_off``;
* ``abba_deadlock`` — CPU a holds lock A and spins on B, CPU b holds B and spins on A
  (kernel/locking/qspinlock.c: a waiter spins in the interrupt state the lock was taken in):
  ctx ``irqs_soft_off`` with ``spin_lock_irqsave``, ``preempt_off`` with ``spin_lock``;
* ``d_state`` — a task ``bug/<cpu>`` blocked in TASK_UNINTERRUPTIBLE for ever
  (``CpuStates.block_task``); the CPU itself is not claimed.  The hung-task detector names no CPU,
  so the task's pid is mapped to the CPU in ``KernelModel.script_tasks``, as the script does.

When a bug's CPU cannot start new code the bug waits (docs/model/bugs.md):

* stop_machine (kernel/stop_machine.c ``multi_cpu_stop``) — from the CPU's arrival in its
  stopper to ``release_machine()`` after resume — holds the CPU hard-disabled, joined and then
  suspended: the bug starts when the mobility flow lets go of the CPU (after its watchdog touch);
* an RTAS call on the CPU (firmware, MSR[EE]=0): the bug starts when the call returns; RTAS calls
  asked for on a claimed CPU later run on another CPU (``DefaultGuestHooks.runnable_cpu``);
* a vCPU stalled in the hypervisor on a fault starts the bug when the stall ends (the guest mode
  calls back);
* a CPU already taken by an earlier bug cannot run another one: that bug never starts.

A bug that starts before the migration suspends leaves a CPU that never runs its stopper thread,
so stop_machine never completes and the partition is never suspended — what the kernel does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lpmsim.bugs.attribution import BugRecord
from lpmsim.bugs.config import BugSpec
from lpmsim.engine.core import Event
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.base import GuestBase
from lpmsim.guest.cpustate import Ctx, Task
from lpmsim.kernel.config import Kernel
from lpmsim.kernel.hooks import DefaultGuestHooks
from lpmsim.kernel.model import KernelRun

BUG_OWNER = "bug"
"""The owner of an injected bug's hold of its vCPUs (``CpuStates``: states compose)."""

BUG_PID_BASE = 30000
"""pid of bug ``i``'s task on its k-th CPU: ``BUG_PID_BASE + 2*i + k`` (ASSUMPTION: free pids)."""

HORIZON_MARGIN_S = 5.0
SOFTLOCKUP_UNIT_S = 2**30 / 1e9  # running_clock() >> 30


def detection_horizon(kind: str, k: Kernel) -> float:
    """How long after a bug starts (or after the LPM flow ends, if later) a detector may still
    report it by the kernel's rules, plus a margin: how long the run is kept going for it.

    Spins: the latest of the SMP hard-lockup check (1.5 x watchdog_thresh after a heartbeat reset,
    on a heartbeat, then a 1 s NMI IPI), the soft lockup (2 x watchdog_thresh in ~1.07 s units,
    sampled every 2/5 x watchdog_thresh), the RCU stall (rcu_cpu_stall_timeout, plus the FQS passes
    after a stall reset) and the workqueue watchdog (up to 2 x workqueue.watchdog_thresh, wheel
    rounding).  d_state: khungtaskd sees the task first at its next scan and reports it once
    ``hung_task_timeout_secs`` have passed since: at most timeout + 2 x interval."""
    if kind == "d_state":
        timeout = k.hung_task_timeout_secs
        interval = k.hung_task_check_interval_secs or timeout
        hung = timeout + 2 * min(interval, timeout) if timeout else 0.0
        return hung + HORIZON_MARGIN_S
    thresh = k.watchdog_thresh
    period = thresh * 0.4
    hard = 1.5 * thresh + period + 1.0
    soft = (2 * thresh + 2) * SOFTLOCKUP_UNIT_S + period
    rcu = k.rcu_cpu_stall_timeout + 1.0
    wq = 2 * k.wq_watchdog_thresh + 1.0
    return max(hard, soft, rcu, wq) + HORIZON_MARGIN_S


def _draw_cpus(spec: BugSpec, n: int, rng: np.random.Generator) -> tuple[int, ...]:
    """The bug's CPU(s): as given, or uniform (the deadlock's two distinct)."""
    if spec.kind != "abba_deadlock":
        return (spec.cpu if spec.cpu is not None else int(rng.integers(n)),)
    a, b = spec.cpu, spec.cpu2
    if a is None and b is None:
        pair = rng.choice(n, size=2, replace=False)
        return (int(pair[0]), int(pair[1]))
    if a is None:
        assert b is not None
        x = int(rng.integers(n - 1))
        return (x + (x >= b), b)
    if b is None:
        x = int(rng.integers(n - 1))
        return (a, x + (x >= a))
    return (a, b)


def _draw_time(spec: BugSpec, rng: np.random.Generator) -> float:
    if spec.at_s is not None:
        return float(spec.at_s)
    assert spec.window_s is not None
    lo, hi = spec.window_s
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)


@dataclass
class Bug:
    """One bug of the scenario, and what happened to it during the run."""

    index: int
    spec: BugSpec
    cpus: tuple[int, ...]
    offset_s: float
    horizon_s: float
    tasks: tuple[Task, ...]
    due_s: float | None = None  # absolute time it was due (None: its origin never came)
    start_s: float | None = None  # the first of its CPUs entered the bug state
    never: bool = False  # a CPU was taken by an earlier bug: it cannot start
    waiting: set[int] = field(default_factory=set)  # CPUs the kernel or the guest still holds

    def record(self) -> BugRecord:
        return BugRecord(
            index=self.index,
            kind=self.spec.kind,
            cpus=self.cpus,
            pids=tuple(t.pid for t in self.tasks),
            due_s=self.due_s,
            start_s=self.start_s,
        )


class BugInjector:
    """Schedules the scenario's bugs and drives their CPUs (``CpuStates``) when they happen.

    ``resumed`` is the migration's RESUMED event (None: not migrating, every time counts from
    t=0).  ``on_start`` (set by the runner) is called when a bug starts, to extend the run."""

    def __init__(
        self,
        kernel: KernelRun,
        specs: Sequence[BugSpec],
        streams: RngStreams,
        guest: GuestBase | None = None,
        resumed: Event | None = None,
    ) -> None:
        self.kernel = kernel
        self.m = kernel.model
        self.env = self.m.env
        self.states = self.m.states
        self.guest = guest
        self.on_start: Callable[[], None] | None = None
        hooks = self.m.hooks
        self.hooks = hooks if isinstance(hooks, DefaultGuestHooks) else None
        if self.hooks is not None:
            self.hooks.release_listeners.append(self._released)
        self.taken: dict[int, int] = {}  # CPU -> index of the spin bug that took it
        n = len(self.states)
        self.bugs: list[Bug] = []
        for i, spec in enumerate(specs):
            rng = streams[f"bugs/{i}"]
            cpus = _draw_cpus(spec, n, rng)
            offset = _draw_time(spec, rng)
            horizon = (
                spec.horizon_s if spec.horizon_s is not None else detection_horizon(spec.kind, self.m.cfg)
            )
            tasks = tuple(Task(f"bug/{c}", BUG_PID_BASE + 2 * i + k) for k, c in enumerate(cpus))
            bug = Bug(i, spec, cpus, offset, horizon, tasks)
            self.bugs.append(bug)
            if resumed is None or spec.after == "start":
                self._schedule(bug, offset)
            else:
                resumed.add_callback(functools.partial(self._on_resume, bug))

    # -- scheduling ------------------------------------------------------------------------------
    def _on_resume(self, bug: Bug, _ev: Event) -> None:
        self._schedule(bug, self.env.now + bug.offset_s)

    def _schedule(self, bug: Bug, t: float) -> None:
        bug.due_s = t
        self.env.call_at(max(t, self.env.now), functools.partial(self._due, bug))
        self._changed()

    def _changed(self) -> None:
        if self.on_start is not None:
            self.on_start()

    def stop_time(self, stop: float, limit: float) -> float:
        """The run's stop time ``stop`` (the kernel's), extended so that every bug due gets its
        detection horizon after it starts or after the LPM flow ends, whichever is later."""
        if stop >= limit:
            return limit
        settled = 0.0
        if self.kernel.mobility is not None:
            end = self.kernel.mobility.times["end_s"]
            settled = end if end is not None else math.inf
        need = stop
        for bug in self.bugs:
            if bug.never:
                continue
            t = bug.start_s if bug.start_s is not None else bug.due_s
            if t is None:
                continue  # its origin (resume) never came
            need = max(need, max(t, settled) + bug.horizon_s)
        return min(limit, need)

    # -- starting ----------------------------------------------------------------------------------
    def _due(self, bug: Bug) -> None:
        if self.m.dead:
            return
        if bug.spec.kind != "d_state":
            if any(c in self.taken for c in bug.cpus):
                bug.never = True
                self._changed()
                return
            for c in bug.cpus:
                self.taken[c] = bug.index
                if self.hooks is not None:
                    self.hooks.claimed.add(c)
        bug.waiting = set(bug.cpus)
        self._try(bug)

    def _kernel_holds(self, bug: Bug, c: int) -> bool:
        h = self.hooks
        if h is None:
            return False
        if h.in_stop_machine(c):
            return True
        return bug.spec.kind != "d_state" and h.in_rtas(c)

    def _try(self, bug: Bug) -> None:
        for c in sorted(bug.waiting):
            if self._kernel_holds(bug, c):
                continue
            bug.waiting.discard(c)
            if bug.spec.kind == "d_state" or self.guest is None:
                self._enter(bug, c)
            else:
                self.guest.claim(c, functools.partial(self._enter, bug, c))

    def _released(self, cpu: int) -> None:
        """The kernel let go of ``cpu`` (stop_machine released it, an RTAS call returned)."""
        for bug in self.bugs:
            if cpu in bug.waiting:
                self._try(bug)

    def _enter(self, bug: Bug, c: int) -> None:
        """CPU ``c`` runs the bug's code from now on (for ever)."""
        if self.m.dead:
            return
        st = self.states
        k = bug.cpus.index(c)
        task = bug.tasks[k]
        kind = bug.spec.kind
        if kind == "d_state":
            self.m.script_tasks[task.pid] = c
            st.block_task(task, f"bug{bug.index}")
        else:
            # the bug's code holds the vCPU for ever (owner "bug": CpuStates' states compose)
            st.set_task(c, task, BUG_OWNER)
            if kind == "irqs_soft_off_spin":
                st.set_ctx(c, Ctx.IRQS_SOFT_OFF, BUG_OWNER)
                st.set_spinning(c, None)
            elif kind == "irqs_hard_off_spin":
                st.set_ctx(c, Ctx.IRQS_HARD_OFF, BUG_OWNER)
                st.set_spinning(c, None)
            else:
                st.set_ctx(c, Ctx.IRQS_SOFT_OFF if bug.spec.irqsave else Ctx.PREEMPT_OFF, BUG_OWNER)
                st.set_spinning(c, lock_name(bug.index, 1 - k))
        if bug.start_s is None:
            bug.start_s = self.env.now
            self._changed()

    # -- results ---------------------------------------------------------------------------------
    def records(self) -> list[BugRecord]:
        return [b.record() for b in self.bugs]


def lock_name(index: int, k: int) -> str:
    """The deadlock's two locks: ``bug<i>_lock_a`` (held by its first CPU) and ``bug<i>_lock_b``."""
    return f"bug{index}_lock_{'ab'[k]}"

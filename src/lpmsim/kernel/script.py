"""Scripted per-CPU timelines (the scenario's ``script`` section) driving ``CpuStates``.

Each entry puts one vCPU into a state at ``at_s`` for ``duration_s`` (``inf``: for ever), then
restores what it had before:

* ``stalled``        — stalled in the hypervisor (``set_stalled``);
* ``irqs_soft_off``, ``irqs_hard_off``, ``preempt_off`` — that context, with task
  ``script/<cpu>`` (pid 1000 + cpu) current;
* ``rtas_call``      — an RTAS call of ``duration_s`` through the guest hooks (hard-disabled,
  global RTAS lock);
* ``d_state``        — a task (``script/<cpu>``, pid 2000 + cpu) sleeps uninterruptibly (for the
  hung-task detector).

Entry i writes as owner ``script#<i>`` (``CpuStates``: states compose): its stall and its context
hold whatever else stalls the vCPU or runs there (a demand fault, the suspend, the workload's own
transitions) and end at the entry's end only, so a scripted timeline behaves the same during a
migration as on a partition that stays put; two entries on one vCPU overlap as two holds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable

from lpmsim.engine.core import Environment
from lpmsim.guest.cpustate import CpuStates, Ctx, Task
from lpmsim.kernel.config import ScriptEntry
from lpmsim.kernel.hooks import GuestHooks


class Script:
    def __init__(
        self,
        env: Environment,
        states: CpuStates,
        hooks: GuestHooks,
        entries: Iterable[ScriptEntry],
        script_tasks: dict[int, int] | None = None,
    ) -> None:
        self.env = env
        self.states = states
        self.hooks = hooks
        self.script_tasks = script_tasks if script_tasks is not None else {}
        for i, e in enumerate(entries):
            if e.cpu >= len(states):
                continue
            env.call_at(max(e.at_s, env.now), functools.partial(self._start, e, f"script#{i}"))

    def _end_at(self, e: ScriptEntry, fn: Callable[[], None]) -> None:
        if math.isfinite(e.duration_s):
            self.env.call_at(self.env.now + e.duration_s, fn)

    def _start(self, e: ScriptEntry, owner: str) -> None:
        st = self.states
        c = e.cpu
        if e.state == "stalled":
            st.set_stalled(c, True, owner)
            self._end_at(e, lambda: st.set_stalled(c, False, owner))
        elif e.state == "rtas_call":
            self.hooks.rtas_call(c, e.duration_s)
        elif e.state == "d_state":
            task = Task(f"script/{c}", 2000 + c)
            self.script_tasks[task.pid] = c
            st.block_task(task, "script")
            self._end_at(e, lambda: st.unblock_task(task.pid))
        else:
            st.set_task(c, Task(f"script/{c}", 1000 + c), owner)
            st.set_ctx(c, Ctx(e.state), owner)
            self._end_at(e, lambda: st.release_ctx(c, owner))

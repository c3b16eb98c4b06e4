"""The hung-task detector.

Mirrors kernel/hung_task.c as of v6.1-v6.12 (``watchdog`` kthread loop, ``check_hung_uninterruptible_tasks``,
``check_hung_task``).

* ``khungtaskd`` wakes every ``hung_task_check_interval_secs`` (0 = the timeout), scans the tasks
  in D state (``CpuStates.blocked``).  A task whose context-switch count changed since the last
  scan gets ``last_switch_time = jiffies``; one whose count did not change is hung once
  ``jiffies >= last_switch_time + timeout``.  A task that blocked after the previous scan has a new
  count at the next one, so the first report comes 1x-2x the timeout after it blocked (DERIVED).
* Report while ``hung_task_warnings`` != 0 (decremented per report, -1 unlimited):
  ``INFO: task %s:%d blocked for more than %ld seconds.`` (``(jiffies - last_switch_time)/HZ``),
  re-reported at every scan while still blocked.  ``hung_task_panic`` ->
  ``panic("hung_task: blocked tasks")`` after the scan.
* ASSUMPTION: khungtaskd started at t=0 and always finds a CPU to run on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lpmsim.kernel.model import KernelModel

HUNG_CPU = 0


class HungTask:
    def __init__(self, m: KernelModel) -> None:
        self.m = m
        cfg = m.cfg
        self.timeout = cfg.hung_task_timeout_secs
        interval = cfg.hung_task_check_interval_secs or self.timeout
        self.interval = min(interval, self.timeout) if self.timeout else interval
        self.warnings = cfg.hung_task_warnings
        self.seen: dict[int, tuple[float, int]] = {}  # pid -> (blocked since, last_switch jiffies)
        if self.timeout > 0 and self.interval > 0:
            m.env.call_at(m.env.now + self.interval, self._scan)

    def _scan(self) -> None:
        m = self.m
        if m.dead:
            return
        t = m.env.now
        clock = m.clock
        j = clock.jiffies(t)
        hz = m.cfg.hz
        hung = False
        for pid in sorted(m.states.blocked):
            bt = m.states.blocked[pid]
            prev = self.seen.get(pid)
            if prev is None or prev[0] != bt.since:
                self.seen[pid] = (bt.since, j)
                continue
            last = prev[1]
            if j < last + self.timeout * hz:
                continue
            hung = True
            if self.warnings != 0:
                if self.warnings > 0:
                    self.warnings -= 1
                line = m.log.emit(
                    t,
                    f"INFO: task {bt.task.comm}:{pid} blocked for more than {(j - last) // hz} seconds.",
                    f"T{HUNG_PID}",
                )
                m.log.emit(t, "      Not tainted 6.6.0-lpmsim #1", f"T{HUNG_PID}")
                m.log.emit(
                    t,
                    '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
                    f"T{HUNG_PID}",
                )
                cpu = m.script_tasks.get(pid)
                m.report(t, "hung_task", "report", [] if cpu is None else [cpu], HUNG_CPU, line)
        if hung and m.cfg.hung_task_panic:
            m.panic(t, "hung_task: blocked tasks", "hung_task_panic", HUNG_CPU)
            return
        m.env.call_at(t + self.interval, self._scan)


HUNG_PID = 58

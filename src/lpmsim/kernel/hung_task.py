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
  then ``      %s %s %.*s`` (``print_tainted()``, the release, the version up to its first space:
  ``Not tainted 6.12.0 #1``, or ``Tainted: G             L      6.12.0 #1`` after a soft lockup;
  lpmsim.kernel.taint), re-reported at every scan while still blocked.  ``hung_task_panic`` ->
  ``panic("hung_task: blocked tasks")`` after the scan.
* khungtaskd is a normal kthread: when its timeout expires and no CPU can schedule (every CPU in the
  stop_machine stopper or stalled: ``KernelModel.nonsched`` holds them all), it scans at the first
  scheduling-clock tick at which one can (its timer fires from a tick; it then runs on that CPU),
  and ``hung_last_checked`` is that time.  ASSUMPTION: started at t=0.
* drmgr (lpmsim.kernel.mobility) sleeps in TASK_UNINTERRUPTIBLE in ``stop_machine()``
  (kernel/stop_machine.c ``__stop_cpus`` -> ``wait_for_completion``; PREEMPT_NONE: it sleeps
  before its own CPU's stopper runs) until the last stopper's ``cpu_stop_signal_done()`` wakes it,
  and in each ``msleep``/``ssleep`` poll of H_VASI_STATE (``schedule_timeout_uninterruptible``).
  The rules above decide, nothing is scripted: every CPU runs its stopper for the whole
  stop_machine, so khungtaskd cannot scan until drmgr has been woken, and each poll sleep is a new
  switch (``nvcsw``), so the next scan finds a changed count.  drmgr is never reported unless
  another CPU could run khungtaskd during the stop_machine.
* Not changed by steal-aware / annotate: a D-state task is on no CPU, and what it waits for is not
  described by one vCPU's dispatch trace log (docs/policies.md).
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
        self.warnings = cfg.hung_task_warnings
        self.seen: dict[int, tuple[float, int]] = {}  # pid -> (blocked since, last_switch jiffies)
        self.last_checked = m.env.now  # hung_last_checked
        self.gen = 0
        self.timeout = 0
        self.interval = 0
        self.set_timeout(cfg.hung_task_timeout_secs, m.env.now)

    def set_timeout(self, timeout: int, t: float) -> None:
        """``hung_task_timeout_secs`` written: khungtaskd wakes and sleeps until
        ``hung_last_checked + interval`` (``hung_timeout_jiffies``; 0 = sleep for ever)."""
        self.timeout = timeout
        interval = self.m.cfg.hung_task_check_interval_secs or timeout
        self.interval = min(interval, timeout) if timeout else interval
        self.gen += 1
        if self.timeout > 0 and self.interval > 0:
            gen = self.gen
            at = max(t, self.last_checked + self.interval)
            self.m.env.call_at(at, lambda: self._due() if gen == self.gen else None)

    def _due(self) -> None:
        """khungtaskd's ``schedule_timeout_interruptible()`` expired: it scans once a CPU runs it."""
        m = self.m
        if m.dead or self.timeout <= 0:
            return
        if len(m.nonsched) >= m.n:
            # no CPU can schedule: try again at the next tick
            gen = self.gen
            at = m.clock.next_jiffy_after(m.env.now)
            m.env.call_at(at, lambda: self._due() if gen == self.gen else None)
            return
        self._scan()

    def _scan(self) -> None:
        m = self.m
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
                # "      %s %s %.*s": print_tainted(), the release, the version up to its first space
                m.log.emit(t, f"      {m.taint.print_tainted()} {m.cfg.release} #1", f"T{HUNG_PID}")
                m.log.emit(
                    t,
                    '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
                    f"T{HUNG_PID}",
                )
                cpu = m.script_tasks.get(pid)
                m.report(t, "hung_task", "report", [] if cpu is None else [cpu], HUNG_CPU, line)
        self.last_checked = t
        if hung and m.cfg.hung_task_panic:
            m.panic(t, "hung_task: blocked tasks", "hung_task_panic", HUNG_CPU)
            return
        gen = self.gen
        m.env.call_at(t + self.interval, lambda: self._due() if gen == self.gen else None)


HUNG_PID = 58

"""The workqueue lockup watchdog.

Mirrors kernel/workqueue.c (CONFIG_WQ_WATCHDOG) as of v6.12: ``wq_watchdog_timer_fn``,
``wq_watchdog_touch``, ``wq_watchdog_reset_touched``, ``panic_on_wq_watchdog``.

* One deferrable timer, re-armed at ``jiffies + thresh`` after each run.  The timer wheel files
  a timer due in ``d`` jiffies at a level of granularity ``8^lvl`` and fires it at the next
  boundary strictly after the due time (kernel/time/timer.c ``calc_index``; DERIVED: for
  3000 jiffies, level 2, 64-jiffy steps).  ASSUMPTION: the timer lives on CPU 0 and runs when CPU
  0 takes timer interrupts (deferred while it cannot).
* Per-CPU pools: ASSUMPTION — every CPU's normal pool (nice 0) always has work queued while the
  CPU cannot schedule (e.g. vmstat_update), so ``pool->watchdog_ts`` is the time the CPU stopped
  scheduling.  ``ts = max(pool_ts, touched[cpu])``; stuck if ``now > ts + thresh`` (jiffies):
  ``BUG: workqueue lockup - pool cpus=%*pbl node=%d flags=0x%x nice=%d stuck for %us!``
  (seconds since pool_ts).  After each run every touch stamp is reset to now.
* ``node=``: ``pr_cont_pool_info()`` prints ``pool->node`` (unless NUMA_NO_NODE); a per-CPU pool's
  is ``cpu_to_node(cpu)``, set in ``workqueue_init()`` at boot (not updated after a migration).
  The partition's topology (``partition.numa_nodes``, ``partition.smt``;
  lpmsim.hypervisor.topology) gives it; a model built without one has every CPU on node 0.  The
  model has no unbound pools (their node is the node covering their cpumask).
* ``workqueue.panic_on_stall`` = N: BUG after N runs that detected a stall (BUG in the timer's
  softirq -> ``Kernel panic - not syncing: Fatal exception in interrupt``).  Only on kernels that
  have the parameter (``Kernel.wq_has_panic_on_stall``, about v6.12; the loader rejects a non-zero
  value on older ones).
* steal-aware / annotate (docs/policies.md): a pool whose CPU's guest time since ``pool_ts`` is
  below the threshold is not reported; annotate prints ``workqueue: CPU %d: memory access stalled
  %u s in the hypervisor`` once per ``pool_ts``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lpmsim.kernel.model import KernelModel

WQ_CPU = 0
LVL_CLK_SHIFT = 3
LVL_BITS = 6


def wheel_expiry(now_j: int, delta_j: int) -> int:
    """Jiffy at which a timer armed at ``now_j`` for ``now_j + delta_j`` fires (timer.c)."""
    expires = now_j + delta_j
    lvl = 0
    while lvl < 8 and delta_j >= ((1 << LVL_BITS) - 1) << (lvl * LVL_CLK_SHIFT):
        lvl += 1
    if lvl == 0:
        return expires
    shift = lvl * LVL_CLK_SHIFT
    return ((expires >> shift) + 1) << shift


class WqWatchdog:
    def __init__(self, m: KernelModel) -> None:
        self.m = m
        self.thresh_j = m.cfg.wq_watchdog_thresh * m.cfg.hz
        self.enabled = self.thresh_j > 0
        self.touched_all = m.env.now
        self.touched = [-math.inf] * m.n
        self.stalls = 0
        self.waiting = False
        self.gen = 0  # bumped by del_timer_sync(): a timer armed before is gone
        self.hv_noted: list[float | None] = [None] * m.n  # annotate: pool_ts of the episode printed
        self.node: tuple[int, ...] = (0,) * m.n  # pool->node = cpu_to_node(cpu) (set_topology)
        if self.enabled:
            self._arm(m.env.now)

    def _arm(self, t: float) -> None:
        clock = self.m.clock
        j = wheel_expiry(clock.jiffies(t), self.thresh_j)
        at = clock.jiffy_time(j)
        gen = self.gen
        self.m.env.call_at(max(at, t), lambda: self._expire() if gen == self.gen else None)

    def set_thresh(self, thresh: int, t: float) -> None:
        """``wq_watchdog_set_thresh()``: delete the timer; if enabled, reset the touch stamps and re-arm."""
        self.gen += 1
        self.waiting = False
        self.thresh_j = thresh * self.m.cfg.hz
        self.enabled = thresh > 0
        if self.enabled:
            self.touched_all = t
            self.touched = [t] * self.m.n
            self._arm(t)

    def set_topology(self, nodes: tuple[int, ...]) -> None:
        """``workqueue_init()``: every per-CPU pool's ``node`` = ``cpu_to_node()`` of its CPU."""
        if len(nodes) != self.m.n:
            raise ValueError(f"{len(nodes)} CPU nodes for {self.m.n} CPUs")
        self.node = tuple(nodes)

    def touch(self, c: int, t: float) -> None:
        self.touched[c] = t

    def on_timer_change(self, c: int, t: float) -> None:
        if c == WQ_CPU and self.waiting and self.m.tok[WQ_CPU]:
            self.waiting = False
            self._run(t)

    def _expire(self) -> None:
        m = self.m
        if m.dead or not self.enabled:
            return
        if not m.tok[WQ_CPU]:
            self.waiting = True
            return
        self._run(m.env.now)

    def _run(self, t: float) -> None:
        m = self.m
        clock = m.clock
        now_j = clock.jiffies(t)
        found = False
        for c in sorted(m.nonsched):
            pool_ts = m.nonsched_since[c]
            ts = max(pool_ts, self.touched[c], self.touched_all)
            if now_j > clock.jiffies(ts) + self.thresh_j:
                if m.dtl is not None and self._hv_excused(c, pool_ts, t):
                    continue  # steal-aware: the pool's CPU was stalled in the hypervisor
                found = True
                secs = ((now_j - clock.jiffies(pool_ts)) * 1000 // m.cfg.hz) // 1000
                line = m.log.emit(
                    t,
                    f"BUG: workqueue lockup - pool cpus={c} node={self.node[c]} flags=0x0 nice=0 stuck for {secs}s!",
                    f"C{WQ_CPU}",
                )
                m.report(t, "workqueue_lockup", "lockup", [c], WQ_CPU, line)
        if found:
            m.log.emit(t, "Showing busy workqueues and worker pools:", f"C{WQ_CPU}")
            if m.cfg.wq_panic_on_stall and m.cfg.wq_has_panic_on_stall:
                self.stalls += 1
                if self.stalls >= m.cfg.wq_panic_on_stall:
                    m.log.emit(t, "kernel BUG at kernel/workqueue.c:7530!", f"C{WQ_CPU}")
                    m.log.emit(t, "Oops: Exception in kernel mode, sig: 5 [#1]", f"C{WQ_CPU}")
                    m.panic(t, "Fatal exception in interrupt", "workqueue_panic", WQ_CPU)
                    return
        self.touched_all = t
        self._arm(t)

    def _hv_excused(self, c: int, pool_ts: float, t: float) -> bool:
        """CPU c's guest time since its pool stopped making progress is below the threshold; an
        excused episode (same ``pool_ts``) is annotated once."""
        m = self.m
        steal = m.hv_excused(c, pool_ts, t, self.thresh_j / m.cfg.hz)
        if steal is None:
            return False
        if self.hv_noted[c] != pool_ts:
            self.hv_noted[c] = pool_ts
            m.hv_annotate(t, "workqueue", c, steal, WQ_CPU)
        return True

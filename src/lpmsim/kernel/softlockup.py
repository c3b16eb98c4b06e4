"""The soft-lockup detector.

Mirrors kernel/watchdog.c as of v6.6 (``watchdog_timer_fn``, ``softlockup_fn``,
``is_softlockup``, ``touch_softlockup_watchdog``, ``update_touch_ts``/``update_report_ts``,
``get_timestamp`` = ``running_clock() >> 30``).

* Per CPU an hrtimer every ``2*watchdog_thresh/5`` s (4 s): it queues ``softlockup_fn`` on the
  CPU's stopper thread (if the previous one ran) and then checks.  ``softlockup_fn`` — run as
  soon as the CPU can schedule — sets ``watchdog_touch_ts`` and ``watchdog_report_ts`` to now.
* Timestamps are in 2^30 ns units (~1.074 s) of ``running_clock()``, per CPU
  (``lpmsim.kernel.timing.RunningClock``, ``kernel.softlockup_clock``): ``timebase`` (default,
  ASSUMPTION) counts wall time; with ``vtb`` a CPU's clock stops while its vCPU is not dispatched,
  so time stalled in the hypervisor counts neither toward the threshold nor in ``stuck for %us``.
  The sampling timer itself runs on the timebase grid either way.  The timer reports when ``now > report_ts +
  2*watchdog_thresh`` (``time_after``): ``BUG: soft lockup - CPU#%d stuck for %us! [%s:%d]``
  with ``now - touch_ts``; it sets ``report_ts = now`` first, so a CPU still stuck is reported
  again after another >20 units.  ``softlockup_panic`` -> ``panic("softlockup: hung tasks")``.
* ``touch_softlockup_watchdog()`` writes the marker SOFTLOCKUP_DELAY_REPORT: the next timer run
  only re-bases ``report_ts`` to now (``touch_ts`` is untouched).
* The timer runs on the shared hrtimer grid (``lpmsim.kernel.timing``); while the CPU cannot
  take interrupts the run is delivered late, when it can.
* steal-aware / annotate (docs/policies.md): a due report is skipped while ``(now - steal) >> 30``
  (steal = hypervisor-stall time since ``report_ts``) is not past the threshold; the first run that
  can report is planned directly.  annotate prints one line per ``touch_ts`` episode.  With the
  ``vtb`` clock the timestamps already leave that time out: nothing more is excused.
* Planning with ``vtb``: the run that can report is computed with the CPU's current clock rate;
  the run itself checks the exact clock (and plans again if early); a rate above the one planned
  with (less steal) plans again at once.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

from lpmsim.kernel.taint import TAINT_SOFTLOCKUP
from lpmsim.kernel.timing import SOFTLOCKUP_SHIFT, Alarm, RunningClock

if TYPE_CHECKING:
    from lpmsim.kernel.model import KernelModel


class SoftLockup:
    def __init__(self, m: KernelModel) -> None:
        self.m = m
        cfg = m.cfg
        self.enabled = cfg.soft_watchdog == 1 and cfg.watchdog_thresh > 0
        self.thresh_u = 2 * cfg.watchdog_thresh
        n = m.n
        t = m.env.now
        self.touch_ts = [t] * n
        self.report_ts: list[float | None] = [t] * n  # None = SOFTLOCKUP_DELAY_REPORT
        self.marker_at = [-math.inf] * n
        self.planned: list[float | None] = [None] * n
        self.planned_g1 = [0.0] * n
        self.planned_rate = [1.0] * n  # vtb: the clock rate a plan assumed
        self.alarm = [Alarm(m.env, functools.partial(self._fire, c)) for c in range(n)]
        self.reported_for: list[float | None] = [None] * n
        self.hv_noted: list[float | None] = [None] * n  # annotate: touch_ts of the episode printed
        vtb = cfg.softlockup_clock == "vtb"
        self.rc = RunningClock(m.clock, m.states, t, self._on_rate if vtb else None)
        self.vtb = vtb

    def restart(self, t: float) -> None:
        """softlockup_start_all(): watchdog_enable() -> update_touch_ts() on every CPU."""
        for c in range(self.m.n):
            self.touch_ts[c] = t
            self.report_ts[c] = t
            self.planned[c] = None

    def _u(self, c: int, t: float) -> int:
        return self.rc.units(c, t)

    def _on_rate(self, c: int, t: float) -> None:
        """vtb: CPU c's clock rate changed.  A plan made with a rate at least as high as every rate
        since is not late (the run it set checks the exact clock and plans again if early); a
        higher rate plans again, and so does a CPU left unplanned while its clock stood still."""
        m = self.m
        if m.dead:
            return
        if self.planned[c] is None:
            if self.enabled and m.tok[c] and not m.sok[c]:
                self.plan(c, t)
        elif self.rc.rate(c) > self.planned_rate[c]:
            self.planned[c] = None
            self.plan(c, t)

    # -- lazily computed stopper runs -------------------------------------------------------------
    def on_sched_block(self, c: int, t: float, last: float | None = None) -> None:
        """CPU c stops scheduling at t; ``last``: ``m.hr_last_run(c, t)`` if the caller has it (the
        same value: nothing here changes what it reads)."""
        if last is None:
            last = self.m.hr_last_run(c, t)
        touch = self.touch_ts[c]  # the touch timestamp with the stopper runs since counted
        te = max(touch, last) if last >= self.m.sched_since[c] - 1e-12 else touch
        if te > touch:
            self.touch_ts[c] = te
            self.report_ts[c] = te
        elif self.report_ts[c] is None and last > self.marker_at[c]:
            self.report_ts[c] = touch
        self.planned[c] = None

    def on_sched_unblock(self, c: int, t: float) -> None:
        self.planned[c] = None
        if self.m.hr_last[c] > self.touch_ts[c] or self.m.hr_last_run(c, t) > self.touch_ts[c]:
            self.touch_ts[c] = t
            self.report_ts[c] = t

    def touch(self, c: int, t: float) -> None:
        self.report_ts[c] = None
        self.marker_at[c] = t
        self.planned[c] = None

    # -- timer runs --------------------------------------------------------------------------------------
    def hrtimer_run(self, c: int, t: float) -> None:
        """A (late) run of the sampling timer on CPU c at t."""
        if not self.enabled or self.m.dead:
            return
        if self.m.sok[c]:
            return  # the stopper runs right after: nothing to report
        rep = self.report_ts[c]
        if rep is None:
            self.report_ts[c] = t
            return
        if self.rc.vtb is None:  # self._u(c, x), inline: round((offset + x) * 1e9) >> 30
            off = self.m.clock.offset
            late = (round((off + t) * 1e9) >> SOFTLOCKUP_SHIFT) > (
                round((off + rep) * 1e9) >> SOFTLOCKUP_SHIFT
            ) + self.thresh_u
        else:
            late = self._u(c, t) > self._u(c, rep) + self.thresh_u
        if late:
            if self.m.dtl is not None and not self.vtb and self._hv_excused(c, rep, t):
                return  # stalled in the hypervisor: checked again at the next runs
            self._report(c, t)

    def _hv_excused(self, c: int, rep: float, t: float) -> bool:
        """steal-aware: ``is_softlockup()`` on the timestamp less the CPU's hypervisor-stall time
        since ``report_ts``; an excused episode (same ``touch_ts``) is annotated once."""
        m = self.m
        steal = m.hv_steal(c, rep, t)
        if steal <= 0.0 or self._u(c, t - steal) > self._u(c, rep) + self.thresh_u:
            return False
        if self.hv_noted[c] != self.touch_ts[c]:
            self.hv_noted[c] = self.touch_ts[c]
            m.hv_annotate(t, "watchdog", c, steal, c)
        return True

    def _report(self, c: int, t: float) -> None:
        m = self.m
        dur = self._u(c, t) - self._u(c, self.touch_ts[c])
        first = self.reported_for[c] != self.touch_ts[c]
        self.reported_for[c] = self.touch_ts[c]
        self.report_ts[c] = t
        task = m.states.current_task(c)
        line = m.log.emit(
            t, f"watchdog: BUG: soft lockup - CPU#{c} stuck for {dur}s! [{task.comm}:{task.pid}]", f"C{c}"
        )
        m.report(t, "softlockup", "self-detected" if first else "rewarn", [c], c, line)
        m.taint.add(TAINT_SOFTLOCKUP)  # add_taint(TAINT_SOFTLOCKUP, LOCKDEP_STILL_OK)
        if m.cfg.softlockup_panic:
            m.panic(t, "softlockup: hung tasks", "softlockup_panic", c)

    def plan(self, c: int, t: float) -> None:
        """CPU c cannot schedule: set the run at which it would be reported, if it takes timers."""
        m = self.m
        if not self.enabled or not m.tok[c] or self.planned[c] is not None:
            return
        g1 = m.grid.next_after(max(t, m.hr_last[c]))
        if math.isinf(g1):
            return
        rep = self.report_ts[c]
        if self.vtb:
            self._plan_vtb(c, t, g1, rep)
            return
        base = g1 if rep is None else rep
        offset = m.clock.offset  # self._u(x) is round((offset + x) * 1e9) >> 30, inline below
        target_u = (round((offset + base) * 1e9) >> 30) + self.thresh_u
        # first grid point g >= g1 with units(g) > target_u
        p = m.grid.p
        g = g1
        need = (target_u + 1) * (2**30) / 1e9 - offset
        if g < need:
            g = g1 + math.ceil((need - g1) / p - 1e-9) * p
        while (round((offset + g) * 1e9) >> 30) <= target_u:
            g += p
        if m.dtl is not None and rep is not None:
            # steal-aware: no run before the hypervisor-stall time known so far is made up reports
            steal = m.hv_steal(c, rep, t)
            if steal > 0.0:
                if g < need + steal:
                    g = g1 + math.ceil((need + steal - g1) / p - 1e-9) * p
                while self._u(c, g - steal) <= target_u:
                    g += p
        self.planned[c] = g
        self.planned_g1[c] = g1
        self.alarm[c].set(g)

    def _plan_vtb(self, c: int, t: float, g1: float, rep: float | None) -> None:
        """``plan`` with the VTB clock: the CPU's clock ``s(g) = s(t) + (g - t) * rate`` ahead."""
        rc, p = self.rc, self.m.grid.p
        r = rc.rate(c)
        if r <= 0.0:
            return  # not dispatched at all: re-planned when it is
        offset = self.m.clock.offset
        s_now = rc.seconds(c, t)
        base_s = rc.seconds(c, rep) if rep is not None else s_now + (g1 - t) * r
        target_u = (round((offset + base_s) * 1e9) >> 30) + self.thresh_u
        need = (target_u + 1) * (2**30) / 1e9 - offset  # clock seconds the report needs
        g = g1
        g_need = t + (need - s_now) / r
        if g < g_need:
            g = g1 + math.ceil((g_need - g1) / p - 1e-9) * p
        while (round((offset + s_now + (g - t) * r) * 1e9) >> 30) <= target_u:
            g += p
        self.planned[c] = g
        self.planned_g1[c] = g1
        self.planned_rate[c] = r
        self.alarm[c].set(g)

    def _fire(self, c: int, g: float) -> None:
        m = self.m
        target = self.planned[c]
        if target is None or m.dead:
            return
        if target != g:
            self.alarm[c].set(target)
            return
        if m.sok[c] or not m.tok[c]:
            self.planned[c] = None
            return
        g1 = self.planned_g1[c]
        self.planned[c] = None
        if self.report_ts[c] is None:
            self.report_ts[c] = g1
        m.hr_last[c] = g
        self.hrtimer_run(c, g)
        if not m.dead:
            self.plan(c, g)

"""The powerpc hard-lockup ("NMI") watchdog: heartbeat, soft-NMI self-detection, SMP checker.

Mirrors arch/powerpc/kernel/watchdog.c as of v6.6-v6.15 (and v5.12-v5.16, below) (``watchdog_timer_interrupt``,
``wd_smp_clear_cpu_pending``, ``set_cpu_stuck``, ``watchdog_smp_panic``, ``soft_nmi_interrupt``,
``arch_touch_nmi_watchdog``, ``watchdog_calc_timeouts``, ``start_watchdog``), read in the
torvalds/linux tree.

* Timeouts (``watchdog_calc_timeouts``): ``threshold = watchdog_thresh + wd_timeout_pct *
  watchdog_thresh / 100`` (integer), local = threshold * tb_freq ticks, SMP = local * 3 / 2,
  heartbeat period = ``watchdog_thresh * 1000 * 2 / 5`` ms from the *raw* threshold.
* Heartbeat: on every hrtimer run the CPU stores its TB, clears its pending bit (a stuck CPU
  prints ``CPU %d became unstuck TB:%lld``; the last one to clear resets ``wd_smp_last_reset_tb``
  and refills pending with the enabled CPUs minus the stuck ones), then runs the SMP checker when
  ``tb - last_reset >= SMP timeout``.  After (re)start CPU 0 is enabled first, so pending = {0}.
* The checker bails if its caller is pending or ``wd_try_report()`` fails; it marks every pending
  CPU stuck (stopping when pending empties, which resets), prints the two headline lines with the
  reset time read *before* the walk, then sends each stuck CPU an NMI IPI with a 1 s timeout,
  one after another (``nmi_ipi``), then ``nmi_panic(NULL, "Hard LOCKUP")`` if hardlockup_panic.
* Soft-NMI: a decrementer interrupt while soft-masked (and not hard-disabled by an external
  interrupt since, ``lpmsim.kernel.irq_arrivals``) enters ``soft_nmi_interrupt``; if ``tb -
  wd_timer_tb >= local timeout`` the CPU reports itself once per episode (silent while stuck;
  ``wd_try_report`` failure re-arms DEC at 100 ms).  Otherwise DEC is re-armed with the local
  timeout when that fits in 31 bits, else it stays 0x7fffffff (4.194 s at 512 MHz).  The first
  entry after interrupts are disabled is the next scheduling-clock tick (ASSUMPTION: the
  decrementer is programmed for the next tick, HZ).
* Before v5.17 (``Kernel.wd_rework`` False: upstream 5.12-5.16, watchdog.c before Nicholas Piggin's
  series 5dad4ba68a24..3d030e301856, read in a v5.12-v5.16 copy): no ``wd_try_report``; the SMP
  checker holds ``wd_smp_lock`` (hard-disabled) while it prints the pending mask and sends the NMI
  IPIs, and marks the CPUs still pending stuck only *after* the IPIs (``set_cpumask_stuck(&pending,
  tb)``), which empties the mask and resets ``wd_smp_last_reset_tb`` to the ``tb`` of the heartbeat
  that started the check.  A target whose heartbeat runs during the IPIs clears its pending bit and
  is not marked stuck (so prints no "became unstuck"); a pending mask emptied meanwhile is refilled
  only by that final mark.  Whatever needs the lock meanwhile waits for it: a stuck CPU's "became
  unstuck TB:%lld" (TB of its heartbeat) and a soft-NMI report (TB values read on entry; silent if the
  checker marked the CPU stuck) are printed when the lock is released.  ``hardlockup_panic``:
  ``nmi_panic`` right after the unlock (lock waiters are not printed).  The soft-NMI reports under
  the lock as well, without the 100 ms retry.  Not modelled: the time a waiter spins hard-disabled
  on the lock.  The text of every line is the same as v5.17+ (both print ``became unstuck TB:%lld``;
  the soft-NMI does not touch ``wd_timer_tb`` in either).
* steal-aware / annotate (docs/policies.md): with the DTL enabled, a CPU whose guest time since its
  last heartbeat is below the timeout (local for the soft-NMI, SMP for the checker) is excused.  The
  soft-NMI re-arms for the first DEC entry that could report.  The SMP checker takes an excused
  pending CPU out of the round like a stuck one but silently, without an NMI IPI (``excused``: left
  out of the refills until it beats again, so the rounds and the checks of the other CPUs go on)
  and judges it again at every heartbeat until it beats or is reported.  annotate prints
  ``watchdog: CPU %d: memory access stalled %u s in the hypervisor`` once per episode (until the
  CPU's heartbeat runs again).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

from lpmsim.kernel.timing import EPS, Alarm

if TYPE_CHECKING:
    from lpmsim.kernel.model import KernelModel

DEC_MAX = 0x7FFFFFFF
NIP_SYMBOL = "_raw_spin_lock_irqsave+0x80/0x110"


class HardLockup:
    def __init__(self, m: KernelModel) -> None:
        self.m = m
        cfg = m.cfg
        self.enabled = cfg.nmi_watchdog == 1 and cfg.watchdog_thresh > 0
        self.pct = 0
        n = m.n
        self.tb = [m.env.now] * n
        self.pending: set[int] = {0}
        self.last_reset = m.env.now
        self.stuck: set[int] = set()
        self.excused: set[int] = set()  # steal-aware: out of the round, judged at every heartbeat
        self.reporting = False
        # before v5.17 (cfg.wd_rework False): wd_smp_lock held over the SMP report and its IPIs
        self.rework = m.cfg.wd_rework
        self.lock_held = False
        self.lock_waiters: list[tuple[int, float, int, int]] = []  # soft-NMI: (cpu, entry, tb, wd_timer_tb)
        self.unstuck_waiters: list[tuple[int, float]] = []  # "became unstuck": (cpu, heartbeat time)
        self.quiet = True
        self.tick_at = math.inf
        self.dec_next: list[float | None] = [None] * n
        self.snmi_plan: list[float | None] = [None] * n
        self.snmi_target: list[float | None] = [None] * n
        self.snmi_alarm = [Alarm(m.env, functools.partial(self._snmi_fire, c)) for c in range(n)]
        self.hv_noted: list[float | None] = [None] * n  # annotate: heartbeat of the episode printed
        self.local_tb = 0
        self.smp_tb = 0
        self.calc()

    # -- constants ------------------------------------------------------------------------------
    def calc(self) -> None:
        thresh = self.m.sys.watchdog_thresh
        threshold = thresh + (self.pct * thresh) // 100
        self.local_tb = threshold * self.m.clock.tb_freq
        self.smp_tb = self.local_tb * 3 // 2
        if self.local_tb < DEC_MAX:
            self.rearm_s = self.local_tb / self.m.clock.tb_freq
        else:
            self.rearm_s = DEC_MAX / self.m.clock.tb_freq

    def restart(self, t: float) -> None:
        """watchdog_hardlockup_stop() + start(): re-seed every CPU, pending = {first enabled}."""
        if not self.enabled:
            return
        for c in range(self.m.n):
            self.tb[c] = t
        self.pending = {0}
        self.excused.clear()
        self.last_reset = t
        self._go_active(t)

    def stop(self) -> None:
        """watchdog_hardlockup_stop(): no heartbeat checks, no soft-NMI reports until restarted.

        ASSUMPTION: stuck CPUs are forgotten silently (the kernel prints ``became unstuck`` for
        them from ``stop_watchdog_on_cpu``, run on each CPU once it can schedule)."""
        self.stuck.clear()
        self.excused.clear()
        self.pending = {0}
        self.reporting = False
        self.lock_held = False
        self.lock_waiters.clear()
        self.unstuck_waiters.clear()
        for c in range(self.m.n):
            self.snmi_plan[c] = None
            self.snmi_target[c] = None

    # -- lazily computed heartbeat --------------------------------------------------------------
    def tb_of(self, c: int, t: float) -> float:
        m = self.m
        if c in m.blocked:
            return self.tb[c]
        return max(self.tb[c], m.hr_last_run(c, t))

    def _ticks(self, t: float) -> int:
        return self.m.clock.tb(t)

    # -- transitions ------------------------------------------------------------------------------
    def on_timer_block(self, c: int, t: float, hr_last: float | None = None) -> None:
        """CPU c stops taking timer interrupts at t; ``hr_last``: ``m.hr_last_run(c, t)`` if the
        caller has it (the same value ``tb_of`` would compute)."""
        self.tb[c] = self.tb_of(c, t) if hr_last is None else max(self.tb[c], hr_last)
        # the DEC is programmed for the next tick when interrupts go off
        clock = self.m.clock  # clock.next_jiffy_after(t), inline
        self.dec_next[c] = (math.floor((clock.offset + t) * clock.hz + EPS) + 1) / clock.hz - clock.offset
        if not self.enabled:
            return
        if self.quiet:
            g = self.m.grid.last_le(t)
            self.last_reset = g if g is not None else self.m.grid.t0
            self.pending = {0}
        self._go_active(t)

    def on_timer_unblock(self, c: int, t: float) -> None:
        self.dec_next[c] = None

    def _go_active(self, t: float) -> None:
        self.quiet = False
        grid = self.m.grid  # grid.next_after(t), inline
        p = grid.p
        g = grid.t0 + max(math.floor((t - grid.t0) / p + EPS) + 1, 1) * p if p > 0 else math.inf
        if g < self.tick_at:
            self._tick_from(g)

    def _tick_from(self, g: float) -> None:
        """The heartbeat's next run at ``g``, earlier than the one pending (``_go_active``)."""
        self.tick_at = g
        self.m.env.call_at(g, lambda: self._tick(g))

    # -- heartbeat --------------------------------------------------------------------------------
    def beat_late(self, c: int, t: float) -> None:
        """A heartbeat delivered when the CPU could take interrupts again."""
        if not self.enabled or self.m.dead:
            return
        self._beat(c, t)

    def _tick(self, g: float) -> None:
        m = self.m
        if g != self.tick_at:
            return
        self.tick_at = math.inf
        if m.dead or not self.enabled:
            return
        first = m.first_timer_ok()
        if first is not None and self._quiet_round(g, first):
            self._beat_all(g, first)
        elif first is not None:
            interesting = sorted((self.pending - m.blocked) | {first})
            for c in interesting:
                if m.dead:
                    return
                if self._beat(c, g):
                    self._cleared_after(c)
                    break
        if m.dead:
            return
        canonical = (
            not m.blocked
            and not self.stuck
            and not self.excused
            and not self.reporting
            and first == 0
            and self.pending == {0}
            and self.last_reset == g
        )
        if canonical:
            self.quiet = True
        else:
            self._go_active(g)

    def _quiet_round(self, g: float, first: int) -> bool:
        """Whether this tick's heartbeats can only store their TB and clear their pending bits: no
        lock held (pre-5.17), no excused CPU, the first CPU not stuck (it would print ``became
        unstuck``), and the SMP timeout not reached at ``g`` (the same test for every CPU beating at
        ``g``: ``last_reset`` only moves when the mask empties, and the tick stops there)."""
        if self.lock_held or self.excused or first in self.stuck:
            return False
        clock = self.m.clock
        off, freq = clock.offset, clock.tb_freq
        return round((off + g) * freq) - round((off + self.last_reset) * freq) < self.smp_tb

    def _beat_all(self, g: float, first: int) -> None:
        """The tick's heartbeats of a quiet round at once: what ``_beat`` does CPU by CPU in
        ascending order (``first``, then the pending CPUs taking interrupts) when none of them
        reports.  The CPU whose beat empties the mask resets it and the tick stops there; the
        CPUs after it beat in the same tick and clear their bits of the new mask."""
        tb = self.tb
        pending = self.pending
        blocked = self.m.blocked
        if first not in pending:
            tb[first] = g
            if not pending:
                self._reset_from(g, first)
                return
        beats = pending - blocked
        if len(beats) == len(tb):
            tb[:] = [g] * len(tb)
        else:
            for c in beats:
                tb[c] = g
        if len(beats) < len(pending):
            pending -= beats
            return
        pending.clear()
        self._reset_from(g, max(beats))

    def _reset_from(self, g: float, last: int) -> None:
        """The mask reset by CPU ``last``'s heartbeat at ``g`` (``_reset``), then cleared by the
        CPUs after it, which beat at ``g`` too: what is left pending is the CPUs up to ``last``
        and those not taking interrupts (without stuck or excused CPUs: ``range(last + 1)`` and
        the blocked ones, the same set)."""
        if self.stuck or self.excused:
            self._reset(g)
            self._cleared_after(last)
            return
        self.last_reset = g
        pending = set(range(last + 1))
        pending.update(self.m.blocked)
        self.pending = pending

    def _cleared_after(self, last: int) -> None:
        """The mask just reset by CPU ``last``'s heartbeat, less the CPUs after it that beat in the
        same tick (those taking interrupts)."""
        blocked = self.m.blocked
        self.pending = {p for p in self.pending if p <= last or p in blocked}

    def _beat(self, c: int, t: float) -> bool:
        """watchdog_timer_interrupt(): returns True when the pending mask was reset."""
        self.tb[c] = t
        reset = self._clear_pending(c, t)
        clock = self.m.clock  # self._ticks(x) is round((offset + x) * tb_freq), inline
        off, freq = clock.offset, clock.tb_freq
        if round((off + t) * freq) - round((off + self.last_reset) * freq) >= self.smp_tb or self.excused:
            reset = self._smp_panic(c, t) or reset
        return reset

    def _reset(self, t: float) -> None:
        self.last_reset = t
        pending = set(range(self.m.n))
        if self.stuck or self.excused:
            pending -= self.stuck
            pending -= self.excused
        self.pending = pending

    def _clear_pending(self, c: int, t: float) -> bool:
        if self.lock_held:
            return self._clear_pending_locked_out(c, t)
        if c not in self.pending:
            self.excused.discard(c)  # steal-aware: it beats again, back in the next round
            if c in self.stuck:
                line = f"watchdog: CPU {c} became unstuck TB:{self._ticks(t)}"
                self.m.log.emit(t, line, f"C{c}")
                self.m.report(t, "hardlockup", "unstuck", [c], c, line)
                self.stuck.discard(c)
                self._go_active(t)
            elif not self.pending:
                self._reset(t)
                return True
            return False
        self.pending.discard(c)
        if not self.pending:
            self._reset(t)
            return True
        return False

    def _clear_pending_locked_out(self, c: int, t: float) -> bool:
        """Pre-v5.17 wd_smp_clear_cpu_pending() while another CPU holds wd_smp_lock for its report:
        the lock-free clear of the pending bit happens; what needs the lock (the unstuck print, the
        refill of an emptied mask) waits for the release, which refills the mask itself."""
        if c in self.pending:
            self.pending.discard(c)
        elif c in self.stuck and all(w[0] != c for w in self.unstuck_waiters):
            self.unstuck_waiters.append((c, t))
        return False

    def _set_cpu_stuck(self, c: int, t: float) -> bool:
        self.stuck.add(c)
        self.excused.discard(c)
        self.pending.discard(c)
        if not self.pending:
            self._reset(t)
            return True
        return False

    def _smp_panic(self, c: int, t: float) -> bool:
        if not self.rework:
            return self._smp_panic_locked(c, t)
        m = self.m
        last = self.last_reset
        # the pending walk (a caller that is itself still pending bails); steal-aware adds the CPUs
        # it excused, judged again at every heartbeat of a CPU not reporting
        due = self._ticks(t) - self._ticks(last) >= self.smp_tb and c not in self.pending
        if (not due and not self.excused) or self.reporting:
            return False
        self.reporting = True
        ipi: list[int] = []
        reset = False
        for x in sorted(self.pending | self.excused if due else self.excused):
            if x == c:
                continue
            excused = self._steal_excuse(x, c, t)
            if excused is not None:
                if excused:
                    reset = True
                    break
                continue
            ipi.append(x)
            if self._set_cpu_stuck(x, t):
                reset = True
                break
        if not ipi:
            self.reporting = False
            return reset
        caller = f"C{c}"
        self._print_smp_report(c, t, last, ipi)
        if m.cfg.hardlockup_all_cpu_backtrace:
            others = [x for x in range(m.n) if x != c]
            m.log.emit(t, f"Sending NMI from CPU {c} to CPUs {cpulist(others)}:", caller)
            self._after_report(c, t)
        else:
            m.nmi.send_sequence(c, ipi, lambda t2: self._after_report(c, t2))
        return reset

    def _steal_excuse(self, x: int, c: int, t: float) -> bool | None:
        """steal-aware: pending CPU ``x`` stalled in the hypervisor, not locked up, leaves this round
        without an IPI (excused).  None: not excused; else whether its leaving emptied the pending
        mask (the round is reset)."""
        m = self.m
        if m.dtl is None or self._hv_excused(x, self.tb_of(x, t), t, self.smp_tb, c) is None:
            return None
        if x in self.pending:
            self.excused.add(x)
            self.pending.discard(x)
            if not self.pending:
                self._reset(t)
                return True
        return False

    def _print_smp_report(self, c: int, t: float, last: float, ipi: list[int]) -> None:
        """watchdog_smp_panic()'s two lines (the same text before and after the v5.17 rework)."""
        m = self.m
        tbn, tbl = self._ticks(t), self._ticks(last)
        caller = f"C{c}"
        line = m.log.emit(t, f"watchdog: CPU {c} detected hard LOCKUP on other CPUs {cpulist(ipi)}", caller)
        m.log.emit(
            t,
            f"watchdog: CPU {c} TB:{tbn}, last SMP heartbeat TB:{tbl} ({m.clock.ms(tbn - tbl)}ms ago)",
            caller,
        )
        m.report(t, "hardlockup", "smp-detected", ipi, c, line)

    def _smp_panic_locked(self, c: int, t: float) -> bool:
        """Pre-v5.17 watchdog_smp_panic(cpu, tb): print the pending CPUs and IPI them under
        wd_smp_lock, then mark the ones still pending stuck (resetting to ``tb``)."""
        m = self.m
        last = self.last_reset
        due = self._ticks(t) - self._ticks(last) >= self.smp_tb and c not in self.pending
        if (not due and not self.excused) or self.lock_held:
            return False
        ipi: list[int] = []
        reset = False
        for x in sorted(self.pending | self.excused if due else self.excused):
            if x == c:
                continue
            excused = self._steal_excuse(x, c, t)
            if excused is not None:
                if excused:
                    reset = True
                    break
                continue
            if x in self.pending:
                ipi.append(x)
        if not ipi:
            return reset
        self.lock_held = self.reporting = True
        caller = f"C{c}"
        self._print_smp_report(c, t, last, ipi)
        if m.cfg.hardlockup_all_cpu_backtrace:
            self._unlock_after_report(c, t, t)  # the backtrace is triggered after the unlock
            others = [x for x in range(m.n) if x != c]
            m.log.emit(t, f"Sending NMI from CPU {c} to CPUs {cpulist(others)}:", caller)
            self._after_report(c, t)
        else:
            m.nmi.send_sequence(c, ipi, lambda t2: self._release_and_finish(c, t, t2))
        return reset

    def _release_and_finish(self, c: int, tb: float, t: float) -> None:
        if self.m.dead:
            return
        self._unlock_after_report(c, tb, t)
        self._after_report(c, t)

    def _unlock_after_report(self, c: int, tb: float, t: float) -> None:
        """set_cpumask_stuck(&wd_smp_cpus_pending, tb), then wd_smp_unlock(); the lock's waiters
        (printed at t unless the reporter panics, which ``_after_report`` does next)."""
        self.stuck |= self.pending - {c}
        self.pending.clear()
        self._reset(tb)
        self.lock_held = False
        if self.m.cfg.hardlockup_panic:
            self.unstuck_waiters.clear()
            self.lock_waiters.clear()
            return
        m = self.m
        for x, tbeat in self.unstuck_waiters:
            if x in self.stuck:
                line = m.log.emit(t, f"watchdog: CPU {x} became unstuck TB:{self._ticks(tbeat)}", f"C{x}")
                m.report(t, "hardlockup", "unstuck", [x], x, line)
                self.stuck.discard(x)
        self.unstuck_waiters.clear()
        waiters, self.lock_waiters = self.lock_waiters, []
        for x, e, tbn, tbc in waiters:
            if x in self.stuck or m.dead:
                continue  # the checker marked it stuck: silent
            self._snmi_report(x, e, t, tbn, tbc)

    def _after_report(self, c: int, t: float) -> None:
        if self.m.cfg.hardlockup_panic:
            self.m.panic(t, "Hard LOCKUP", "hardlockup_panic", c)
            return
        self.reporting = False
        self._go_active(t)

    # -- touch ----------------------------------------------------------------------------------------
    def arch_touch(self, c: int, t: float) -> None:
        """arch_touch_nmi_watchdog(): at most once per heartbeat period."""
        if not self.enabled:
            return
        period_tb = self.m.sys.watchdog_thresh * 400 * self.m.clock.tb_freq // 1000
        if self._ticks(t) - self._ticks(self.tb_of(c, t)) >= period_tb:
            self.tb[c] = t
            self._clear_pending(c, t)
            self._go_active(t)

    # -- soft-NMI ---------------------------------------------------------------------------------------
    def soft_nmi_update(self, c: int, t: float, reachable: bool, force: bool = False) -> None:
        if not self.enabled:
            return
        plan = self.snmi_plan[c]
        if reachable:
            if plan is not None and not force:
                return  # unchanged episode: the scheduled entry stands
            if plan is not None:
                # keep the decrementer's phase: the next entry at or after t
                e0 = plan + max(0, math.ceil((t - plan) / self.rearm_s - EPS)) * self.rearm_s
            else:
                dec = self.dec_next[c]
                e0 = t if dec is None else max(t, dec)
            self.snmi_plan[c] = e0
            self._schedule_snmi(c, e0)
        elif plan is not None:
            # left the soft-masked running state: the next DEC expiry after now is kept pending
            if self.m.tok[c]:
                self.dec_next[c] = None
            else:
                k = max(0, math.floor((t - plan) / self.rearm_s + EPS) + 1)
                self.dec_next[c] = plan + k * self.rearm_s
            self.snmi_plan[c] = None
            self.snmi_target[c] = None

    def _schedule_snmi(self, c: int, e0: float, credit_s: float = 0.0, min_k: int = 0) -> None:
        """Next DEC entry e0 + k*rearm_s (k >= min_k) at which the local timeout can have passed;
        ``credit_s``: hypervisor-stall time already known to lie in the window (steal-aware)."""
        clock = self.m.clock
        freq, offset = clock.tb_freq, clock.offset  # self._ticks(x) is round((offset + x) * freq)
        due_tb = round((offset + self.tb[c]) * freq) + self.local_tb + round(credit_s * freq)
        k = max(min_k, math.ceil((due_tb / freq - offset - e0) / self.rearm_s - EPS))
        e = e0 + k * self.rearm_s
        while round((offset + e) * freq) < due_tb:
            k += 1
            e = e0 + k * self.rearm_s
        e = max(e, self.m.env.now)
        self.snmi_target[c] = e
        self.snmi_alarm[c].set(e)

    def _snmi_fire(self, c: int, t: float) -> None:
        target = self.snmi_target[c]
        if target is None or self.m.dead or not self.enabled:
            return
        if target != t:
            self.snmi_alarm[c].set(target)
            return
        self.snmi_target[c] = None
        self._snmi_entry(c, t)

    def _snmi_entry(self, c: int, e: float) -> None:
        m = self.m
        tbn, tbc = self._ticks(e), self._ticks(self.tb[c])
        if tbn - tbc < self.local_tb:
            self.snmi_plan[c] = e
            self._schedule_snmi(c, e)
            return
        if m.dtl is not None:
            steal = self._hv_excused(c, self.tb[c], e, self.local_tb, c)
            if steal is not None:
                # steal-aware: not yet the local timeout in guest time; no entry before the steal
                # is made up can report (the next one at least one DEC period on)
                self.snmi_plan[c] = e
                self._schedule_snmi(c, e, credit_s=steal, min_k=1)
                return
        if self.lock_held:
            # before v5.17: wd_smp_lock spins until the SMP report is over (decided then)
            self.lock_waiters.append((c, e, tbn, tbc))
            return
        if c in self.stuck:
            return  # silent until the CPU's heartbeat runs again
        if self.reporting:
            self.snmi_plan[c] = e + 0.1  # "Couldn't report, try again in 100ms"
            self._schedule_snmi(c, e + 0.1)
            return
        self._snmi_report(c, e, e, tbn, tbc)

    def _snmi_report(self, c: int, e: float, t: float, tbn: int, tbc: int) -> None:
        """The soft-NMI's report: entry at e (TB values read then), printed at t (>= e: after a
        pre-v5.17 wait for wd_smp_lock)."""
        m = self.m
        self.reporting = True
        self._set_cpu_stuck(c, e)
        caller = f"C{c}"
        line = m.log.emit(t, f"watchdog: CPU {c} self-detected hard LOCKUP @ {NIP_SYMBOL}", caller)
        m.log.emit(
            t, f"watchdog: CPU {c} TB:{tbn}, last heartbeat TB:{tbc} ({m.clock.ms(tbn - tbc)}ms ago)", caller
        )
        m.report(t, "hardlockup", "self-detected", [c], c, line)
        if m.cfg.hardlockup_all_cpu_backtrace:
            others = [x for x in range(m.n) if x != c]
            m.log.emit(t, f"Sending NMI from CPU {c} to CPUs {cpulist(others)}:", caller)
        if m.cfg.hardlockup_panic:
            m.panic(t, "Hard LOCKUP", "hardlockup_panic", c)
            return
        self.reporting = False
        self._go_active(t)

    # -- steal-aware / annotate ------------------------------------------------------------------------
    def _hv_excused(self, x: int, t0: float, t: float, timeout_tb: int, by: int) -> float | None:
        """CPU x's guest time since t0 is below the timeout: the steal seconds (annotated once per
        episode of x, i.e. until its heartbeat runs again), else None."""
        m = self.m
        steal = m.hv_excused(x, t0, t, timeout_tb / m.clock.tb_freq)
        if steal is not None:
            key = self.tb_of(x, t)
            if self.hv_noted[x] != key:
                self.hv_noted[x] = key
                m.hv_annotate(t, "watchdog", x, steal, by)
        return steal


def cpulist(cpus: list[int]) -> str:
    """``%*pbl``: ranges of consecutive CPUs, e.g. ``3,5-7``."""
    out: list[str] = []
    s = sorted(cpus)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        out.append(str(s[i]) if i == j else f"{s[i]}-{s[j]}")
        i = j + 1
    return ",".join(out)

"""RCU CPU-stall warnings.

Mirrors kernel/rcu/tree_stall.h as of v6.12 (``check_cpu_stall``, ``print_cpu_stall``,
``print_other_cpu_stall``, ``panic_on_rcu_stall``, ``record_gp_stall_check_time``,
``rcu_cpu_stall_reset``) and kernel/rcu/tree.c ``rcu_gp_fqs`` (the ``nr_fqs_jiffies_stall``
countdown), read in stored kernel copies; the old reset (``jiffies_stall = jiffies +
ULONG_MAX / 2``) for versions before the 2023 change.

Grace periods as the kernel sees them: a GP ends when every CPU has passed a quiescent state
since it began.  ASSUMPTION: a CPU that can schedule passes quiescent states continuously, and a
healthy system completes GPs within milliseconds, so a GP that stalls starts when the first CPU
stops being able to schedule; its holdouts are the CPUs unable to schedule at its start or
within its first jiffy (a CPU notices a new GP, and reports, at its next tick).  When
the last holdout reports, the next GP starts at once with the CPUs unable to schedule then.

* ``jiffies_stall = gp_start + timeout*HZ``.  On each scheduling-clock tick (only CPUs taking
  timer interrupts) ``check_cpu_stall``: a holdout CPU reports itself at ``jiffies >=
  jiffies_stall`` (``INFO: %s self-detected stall on CPU``); any other CPU at ``jiffies >=
  jiffies_stall + RCU_STALL_RAT_DELAY (2)`` (``INFO: %s detected stalls on CPUs/tasks:``).  At the
  same jiffy the lowest-numbered CPU ticks first (ASSUMPTION).
* After a report ``jiffies_stall = jiffies + 3*timeout + 3``; then ``panic_on_rcu_stall()``:
  ``if (++cpu_stall < max_rcu_stall_to_panic) return; if (panic_on_rcu_stall) panic("RCU Stall\\n")``.
* ``rcu_cpu_stall_reset()``: old — suppressed for the rest of this GP; new (v6.6) —
  ``nr_fqs_jiffies_stall = 3``: checks return early until the third FQS pass, which sets
  ``jiffies_stall = jiffies + timeout``.  FQS passes every ``jiffies_till_next_fqs`` =
  ``1 + (HZ > 250) + (HZ > 500) + nr_cpu_ids / 256`` jiffies (tree.c ``rcu_init_geometry``, from
  memory: UNVERIFIED), the first one a period after the reset (ASSUMPTION).
* steal-aware / annotate (docs/policies.md): holdouts whose guest time since the timeout began
  counting (GP start, or the re-arm after a reset) is below the timeout are excused and not listed;
  with none left there is no report and the check moves to when the first could reach the timeout.
  annotate prints ``rcu: CPU %d: memory access stalled %u s in the hypervisor`` once per GP.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lpmsim.kernel.timing import EPS, Alarm

if TYPE_CHECKING:
    from lpmsim.kernel.model import KernelModel

RCU_STALL_RAT_DELAY = 2


class RcuStall:
    def __init__(self, m: KernelModel) -> None:
        self.m = m
        cfg = m.cfg
        self.enabled = cfg.rcu_cpu_stall_suppress == 0
        self.timeout_j = cfg.rcu_cpu_stall_timeout * cfg.hz
        self.fqs_j = 1 + (cfg.hz > 250) + (cfg.hz > 500) + m.n // 256
        self.active = False
        self.holdouts: set[int] = set()
        self.gp_start = 0
        self.js: float = math.inf
        self.fqs3: int | None = None
        self.gp_seq = 10000
        self.reports_this_gp = 0
        self.cpu_stall = 0
        self.alarm = Alarm(m.env, self._fire)
        # steal-aware / annotate
        self.base_j = 0  # jiffy the stall timeout counts from: GP start, or the re-arm after a reset
        self.hv_noted: set[int] = set()  # holdouts of this GP already annotated
        self.hv_hold = -math.inf  # all holdouts excused: none can report before this time

    # -- grace periods ---------------------------------------------------------------------------
    def _start_gp(self, t: float) -> None:
        m = self.m
        self.holdouts = set(m.nonqs)
        self.gp_seq += 4
        if not self.holdouts:
            self.active = False
            return
        self.active = True
        self.gp_start = m.clock.jiffies(t)
        self.base_j = self.gp_start
        self.hv_noted.clear()
        self.hv_hold = -math.inf
        self.js = self.gp_start + self.timeout_j
        self.fqs3 = None
        self.reports_this_gp = 0
        self.poke(t)

    def on_nonqs(self, c: int, t: float) -> None:
        if not self.active:
            self._start_gp(t)
        elif self.m.clock.jiffies(t) == self.gp_start:
            # a CPU learns of a new GP at its next tick: stopping within the GP's first jiffy it
            # has not reported a quiescent state for it yet
            self.holdouts.add(c)

    def on_qs(self, c: int, t: float) -> None:
        if not self.active or c not in self.holdouts:
            return
        self.holdouts.discard(c)
        if not self.holdouts:
            self._start_gp(t)

    def stall_reset(self, t: float) -> None:
        if not self.active:
            return
        j = self.m.clock.jiffies(t)
        if self.m.cfg.rcu_reset == "third_fqs":
            self.js = math.inf
            self.fqs3 = j + 3 * self.fqs_j
        else:
            self.js = math.inf
            self.fqs3 = None
        if self.m.dtl is not None:
            self.hv_hold = -math.inf
            self.poke(t)

    def set_suppress(self, value: int, t: float) -> None:
        """``rcupdate.rcu_cpu_stall_suppress`` written: checks stop, or resume with nothing reset."""
        self.enabled = value == 0
        if self.enabled:
            self.poke(t)

    # -- checks ------------------------------------------------------------------------------------
    def _js_eff(self) -> float:
        if self.fqs3 is not None:
            return self.fqs3 + self.timeout_j
        return self.js

    def poke(self, t: float) -> None:
        if self.active and self.enabled and not self.m.dead:
            fqs3 = self.fqs3
            js = self.js if fqs3 is None else fqs3 + self.timeout_j  # _js_eff()
            if math.isinf(js):
                return  # no report possible yet
            clock = self.m.clock
            if self.alarm.at <= max(int(js) / clock.hz - clock.offset, self.hv_hold):  # jiffy_time
                return  # the pending alarm re-evaluates first
            nxt = self._next(t)
            if nxt is not None:
                self.alarm.set(self.m.clock.jiffy_time(nxt[0]))

    def _next(self, t: float, excused: frozenset[int] = frozenset()) -> tuple[int, int, bool] | None:
        """(jiffy, cpu, self_detected) of the next report if nothing changes, or None; ``excused``
        holdouts (steal-aware) do not report themselves."""
        m = self.m
        js = self._js_eff()
        if math.isinf(js):
            return None
        clock = m.clock  # clock.jiffies(clock.next_jiffy_time(t)), inline
        tn = math.ceil((clock.offset + t) * clock.hz - EPS) / clock.hz - clock.offset
        jnow = math.floor((clock.offset + tn) * clock.hz + EPS)
        first = m.first_timer_ok()
        if first is None:
            return None
        j_other = max(int(js) + RCU_STALL_RAT_DELAY, jnow)
        j_self = max(int(js), jnow)
        if j_self < j_other:  # a ticking holdout reports itself first, if there is one
            # ``first`` is the lowest ticking CPU: a holdout itself, it is the lowest ticking one
            if first in self.holdouts and first not in excused:
                return (j_self, first, True)
            # the ticking holdouts: tok[c] is False exactly when c is in m.blocked
            ticking = self.holdouts - m.blocked
            if excused:
                ticking -= excused
            me = min(ticking, default=None)
            if me is not None:
                return (j_self, me, True)
        return (j_other, first, first in self.holdouts and first not in excused)

    def _fire(self, t: float) -> None:
        m = self.m
        if not self.active or m.dead or not self.enabled:
            return
        nxt = self._next(t)
        if nxt is None:
            return
        j, c, selfd = nxt
        if m.clock.jiffy_time(j) > t + 1e-9:
            self.alarm.set(m.clock.jiffy_time(j))
            return
        cpus: list[int] | None = None
        if m.dtl is not None:
            excused = self._hv_excused(t, c)
            if excused:
                if len(excused) == len(self.holdouts):
                    self._hv_push(t, excused)
                    return
                nxt = self._next(t, frozenset(excused))
                if nxt is None:
                    return
                j, c, selfd = nxt
                if m.clock.jiffy_time(j) > t + 1e-9:
                    self.alarm.set(m.clock.jiffy_time(j))
                    return
                cpus = sorted(self.holdouts - excused.keys())
        if self.fqs3 is not None:
            self.js = self.fqs3 + self.timeout_j
            self.fqs3 = None
            self.base_j = int(self.js) - self.timeout_j
        self._print(t, j, c, selfd, cpus)
        if m.dead:
            return
        self.js = j + 3 * self.timeout_j + 3
        self.poke(t + 1e-6)

    def _print(self, t: float, j: int, c: int, selfd: bool, holdouts: list[int] | None = None) -> None:
        m = self.m
        name = m.cfg.rcu_name
        caller = f"C{c}"
        tj = j - self.gp_start
        fqs = tj // self.fqs_j
        kind = "rewarn" if self.reports_this_gp else ("self-detected" if selfd else "smp-detected")
        self.reports_this_gp += 1
        if selfd:
            line = m.log.emit(t, f"rcu: INFO: {name} self-detected stall on CPU", caller)
            m.log.emit(t, "rcu: \t" + self._cpu_info(c, tj, fqs), caller)
            m.log.emit(t, f"rcu: \t(t={tj} jiffies g={self.gp_seq} q=0 ncpus={m.n})", caller)
            cpus = [c]
        else:
            line = m.log.emit(t, f"rcu: INFO: {name} detected stalls on CPUs/tasks:", caller)
            cpus = sorted(self.holdouts) if holdouts is None else holdouts
            for h in cpus:
                m.log.emit(t, "rcu: \t" + self._cpu_info(h, tj, fqs), caller)
            m.log.emit(
                t, f"rcu: \t(detected by {c}, t={tj} jiffies, g={self.gp_seq}, q=0 ncpus={m.n})", caller
            )
        m.report(t, "rcu_stall", kind, cpus, c, line)
        self.cpu_stall += 1
        if self.cpu_stall >= m.cfg.max_rcu_stall_to_panic and m.cfg.panic_on_rcu_stall:
            m.panic(t, "RCU Stall\n", "rcu_stall_panic", c)

    # -- steal-aware / annotate ----------------------------------------------------------------------
    def _hv_excused(self, t: float, by: int) -> dict[int, float]:
        """Holdouts whose guest time since the stall timeout began counting is below the timeout,
        with their steal seconds; each is annotated once per grace period (printed by ``by``)."""
        m = self.m
        t0 = m.clock.jiffy_time(self.fqs3 if self.fqs3 is not None else self.base_j)
        timeout_s = self.timeout_j / m.cfg.hz
        out: dict[int, float] = {}
        for h in sorted(self.holdouts):
            steal = m.hv_excused(h, t0, t, timeout_s)
            if steal is not None:
                out[h] = steal
                if h not in self.hv_noted:
                    self.hv_noted.add(h)
                    m.hv_annotate(t, "rcu", h, steal, by)
        return out

    def _hv_push(self, t: float, excused: dict[int, float]) -> None:
        """Every holdout excused: no report now; check again when the first could have run for the
        timeout in guest time (the steal known so far added to the timeout)."""
        m = self.m
        t0 = m.clock.jiffy_time(self.fqs3 if self.fqs3 is not None else self.base_j)
        timeout_s = self.timeout_j / m.cfg.hz
        lo = min(t0 + timeout_s + s for s in excused.values())
        at = m.clock.next_jiffy_time(max(lo, m.clock.next_jiffy_after(t)))
        self.hv_hold = at
        self.alarm.set(at)

    def _cpu_info(self, c: int, tj: int, fqs: int) -> str:
        ticking = self.m.tok[c]
        flags = "...." if ticking else "...!"
        ticks = tj if ticking else 0
        return f"{c}-{flags}: ({ticks} ticks this GP) idle=0000/1/0x4000000000000000 softirq=0/0 fqs={fqs}"

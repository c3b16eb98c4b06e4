"""The guest kernel: every detector wired to ``CpuStates`` (and to the migration) in one Environment.

``KernelModel`` subscribes to ``CpuStates``; on every change of a vCPU it derives four facts the
kernel's mechanisms depend on, and hands only their *transitions* to the detectors:

* ``timer_ok``  — the CPU takes timer interrupts (running, interrupts enabled, not spinning in an
  NMI-IPI send loop): the watchdog hrtimers and the scheduling-clock tick run;
* ``sched_ok``  — the scheduler can run another task (stopper thread, workers);
* ``qs_ok``     — the CPU passes RCU quiescent states: ASSUMPTION, a CPU that can schedule does;
  so does one spinning in the stop_machine rendezvous (``GuestHooks.rendezvous``,
  ``rcu_momentary_dyntick_idle()``, where the version has it);
* ``nmi_ok``    — a system reset can be taken (not stalled in the hypervisor);
* soft-NMI reachable — a decrementer interrupt enters the powerpc soft-NMI path.

Kernel version followed: see ``lpmsim.kernel.config`` (v6.6 by default).  Each detector module
names the kernel file it mirrors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lpmsim.engine.core import Environment
from lpmsim.guest.cpustate import IRQS_OFF, NO_SCHEDULE, CpuStates, Ctx
from lpmsim.hypervisor.migration import Migration
from lpmsim.kernel.config import Kernel, ScriptEntry
from lpmsim.kernel.dtl import Dtl
from lpmsim.kernel.hardlockup import HardLockup
from lpmsim.kernel.hooks import AdaptedGuestHooks, DefaultGuestHooks, GuestHooks, GuestRtas
from lpmsim.kernel.hung_task import HungTask
from lpmsim.kernel.irq_arrivals import IrqArrivals
from lpmsim.kernel.mobility import DRMGR_PID, LpmPolicy, Mobility
from lpmsim.kernel.nmi_ipi import NmiIpi
from lpmsim.kernel.panic import Cause, Crash, oops_line, panic_line
from lpmsim.kernel.printk import KernelLog
from lpmsim.kernel.rcu_stall import RCU_STALL_RAT_DELAY, RcuStall
from lpmsim.kernel.script import Script
from lpmsim.kernel.softlockup import SoftLockup
from lpmsim.kernel.sysctl import Sysctls, write
from lpmsim.kernel.taint import Taint
from lpmsim.kernel.timing import EPS, SOFTLOCKUP_SHIFT, Clock, Grid
from lpmsim.kernel.wq_watchdog import WQ_CPU, WqWatchdog

# An enum member looked up once: ``Ctx.X`` costs an attribute lookup on the enum class.
_SOFT_OFF = Ctx.IRQS_SOFT_OFF
_INF = math.inf
# Per context, what a running vCPU not spinning, not hard-disabled and not held busy can do:
# take timer interrupts (not IRQS_OFF), schedule (not NO_SCHEDULE), enter the soft-NMI path
# (interrupts soft-disabled): CpuStates' predicates ``can_take_timer``, ``can_schedule``,
# ``soft_nmi_reachable`` for that state (_refresh)
_CTX_FACTS = {ctx: (ctx not in IRQS_OFF, ctx not in NO_SCHEDULE, ctx == Ctx.IRQS_SOFT_OFF) for ctx in Ctx}

DETECTORS = ("hardlockup", "softlockup", "rcu_stall", "workqueue_lockup", "hung_task")
DTL_MODES = ("steal-aware", "annotate")


def hv_stall_line(prefix: str, c: int, steal_s: float) -> str:
    """The annotate policy's line: ``watchdog: CPU 5: memory access stalled 12 s in the hypervisor``."""
    return f"{prefix}: CPU {c}: memory access stalled {max(0, int(steal_s))} s in the hypervisor"


class _StallJiffyTimes:
    """The times of RCU's stall jiffy ``int(js)`` and of ``int(js) + RCU_STALL_RAT_DELAY`` for the
    ``js`` seen last: ``KernelModel._refresh``'s poke test, at every change of a CPU's timer
    interrupts, reads them while ``js`` stays (the same arithmetic, done once per ``js``)."""

    __slots__ = ("jr", "js", "jt")

    def __init__(self) -> None:
        self.js: float | None = None
        self.jt = 0.0
        self.jr = 0.0


class KernelModel:
    def __init__(
        self,
        env: Environment,
        states: CpuStates,
        cfg: Kernel,
        rng: np.random.Generator,
        hooks: GuestHooks | None = None,
        irq_rate_hz: float = 0.0,
        irq_rng: np.random.Generator | None = None,
    ) -> None:
        self.env = env
        self.states = states
        self.cfg = cfg
        self.rng = rng
        self.n = len(states)
        self.sys = Sysctls.from_cfg(cfg)  # run-time values: policies write them during the migration
        self.hooks: GuestHooks = hooks if hooks is not None else DefaultGuestHooks(env, states)
        self.clock = Clock(cfg.uptime_at_start_s, cfg.tb_freq_hz, cfg.hz)
        self.log = KernelLog(cfg.uptime_at_start_s, cfg.printk_caller)
        self.taint = Taint(cfg.taint_positions)  # kernel/panic.c tainted_mask (lpmsim.kernel.taint)
        self.events: list[dict[str, Any]] = []
        self.crash: Crash | None = None
        self.dead = False
        self.busy: set[int] = set()
        self.hooks.busy = self.busy  # stop_machine waits for a CPU the kernel holds busy
        self.forwarded: set[int] = set()
        self.script_tasks: dict[int, int] = {}
        # hrtimer grid shared by the heartbeat and the soft-lockup sampler
        self.period = cfg.watchdog_thresh * 400 / 1000.0  # watchdog_thresh*1000*2/5 ms
        self.grid = Grid(env.now, self.period)
        n = self.n
        self.tok = [True] * n
        self._tok_lb = 0  # no CPU below it takes timer interrupts (first_timer_ok)
        self.sok = [True] * n
        self.nok = [True] * n
        self.qok = [True] * n
        self.nonqs: set[int] = set()  # CPUs not passing RCU quiescent states (RcuStall holdouts)
        self._rdv = self.hooks.rendezvous if cfg.stop_machine_rcu_qs else set()
        self.blocked: set[int] = set()
        self.nonsched: set[int] = set()
        self.healthy_since = [env.now] * n
        self.sched_since = [env.now] * n
        self.nonsched_since = [0.0] * n
        self.hr_last = [env.now] * n
        self.hard = HardLockup(self)
        self.soft = SoftLockup(self)
        self.rcu = RcuStall(self)
        self.wq = WqWatchdog(self)
        self.hung = HungTask(self)
        self._cs = states.cpus  # the CpuState list (never replaced)
        self.nmi = NmiIpi(self)
        self._pk = _StallJiffyTimes()  # (_refresh's poke test: a cache, not the model's state)
        # steal-aware / annotate (docs/policies.md): the dispatch trace log, once a policy enables it
        self.dtl: Dtl | None = None
        self.dtl_mode: str | None = None
        for c in range(n):
            self._refresh(c, env.now, False)
        # A change of steal_frac alone moves none of the four facts, and the re-arms that _refresh
        # may still call (the fast path) have nothing to do between changes: HardLockup keeps a
        # soft-NMI plan exactly while a CPU is soft-NMI reachable and SoftLockup a planned run
        # while one takes timers but cannot schedule (each re-planned wherever these change,
        # reconfigure/restart/touch included) - so it is not told of those changes.
        # The stop_machine hooks' observer, subscribed just before (unless a VTB clock came in
        # between), is called from _refresh first, where it would act (DefaultGuestHooks._changed)
        hooks = self.hooks
        self._hooks_first: DefaultGuestHooks | None = None
        if (
            isinstance(hooks, DefaultGuestHooks)
            and type(hooks)._changed is DefaultGuestHooks._changed
            and states.take_last(hooks._changed)
        ):
            self._hooks_first = hooks
        states.subscribe(self._refresh, steal=False)
        # must-hard-mask interrupts (lpmsim.kernel.irq_arrivals): the workload's, and the kernel's
        # own IPIs (RCU's resched/irq_work, the backtrace IPIs) sent through ``irq.deliver``
        # (told of each change by _refresh, after the model: the next observer it would be)
        self.irq = IrqArrivals(env, states, irq_rate_hz, irq_rng, self.busy, subscribe=False)
        self._irq_pending = self.irq.pending
        self._irq_due = self.irq.due

    def set_topology(self, nodes: tuple[int, ...], smt: int) -> None:
        """The partition's topology (lpmsim.hypervisor.topology): each CPU's NUMA node (the
        workqueue pools' ``node=``) and its threads per core (doorbell IPIs to SMT siblings)."""
        self.wq.set_topology(nodes)
        self.irq.set_smt(smt, self.cfg.sibling_doorbells)

    # -- lazily computed hrtimer runs -----------------------------------------------------------
    def hr_last_run(self, c: int, t: float) -> float:
        if c in self.blocked:
            return self.hr_last[c]
        # ``self.grid.last_le(t)``, inline (the same arithmetic)
        grid = self.grid
        p = grid.p
        if p > 0:
            k = math.floor((t - grid.t0) / p + EPS)
            if k >= 1:
                g = grid.t0 + k * p
                if g >= self.healthy_since[c] - 1e-12:
                    return max(self.hr_last[c], g)
        return self.hr_last[c]

    def first_timer_ok(self) -> int | None:
        if len(self.blocked) >= self.n:
            return None
        # tok[c] is False exactly when c is in blocked; every CPU below ``_tok_lb`` is blocked
        # (an unblock lowers the bound), so the search starts there
        first = self.tok.index(True, self._tok_lb)
        self._tok_lb = first
        return first

    # -- state changes ---------------------------------------------------------------------------
    def _refresh(self, c: int, t: float, observer: bool = True) -> None:
        """CPU c's state changed (``CpuStates`` observer; ``set_busy``): derive the four facts and
        hand their transitions to the detectors.  ``observer``: called as the observer of
        ``CpuStates`` (then it tells the interrupt arrivals after itself); False from ``set_busy``.

        This runs at every change of every vCPU (~170,000 transitions in a run of the validation
        stress setting, a fluid stall and its end each moving all four facts), so the detectors'
        small transition hooks are written out here, each marked with the method it stands for
        (the same expressions, the same order of reads and writes; ``max(a, b)`` as ``b if b > a
        else a``, which keeps ``a`` on a tie as ``max`` does); a hook is called where it can do
        more than this (a grace period to start, a system reset waiting, a late hrtimer run).
        tests/kernel's hand-computed cases and ``benchmarks/fingerprint.py`` hold it to the
        methods' results (docs/performance.md, "Round 6")."""
        cs = self._cs[c]  # (the CpuState object: its fields are read where they are needed)
        try:
            if observer:
                hk = self._hooks_first  # the hooks' observer, told first (see __init__)
                if hk is not None and c in hk._stop_waiting:
                    hk._changed(c, t)
            if self.dead:
                return
            # CpuStates' predicates, read from the state at once
            if cs.stalled:  # in the hypervisor: none
                tok = sok = nok = snmi = qok = False
            else:
                # can_take_timer, can_schedule, soft_nmi_reachable: the context's part looked up
                tok, sok, snmi = _CTX_FACTS[cs.ctx]
                if c in self.busy:  # (the kernel holds it hard-disabled: none of the three)
                    tok = sok = snmi = False
                else:
                    if sok and cs.spinning is not None:
                        sok = False
                    if snmi and cs.hard_dis:
                        snmi = False
                nok = True  # can_take_nmi
                qok = sok or c in self._rdv
            # (the flag lists as locals: they are never replaced, and re-read at every test below,
            # since a detector's hook may change them)
            tokl, sokl, nokl, qokl = self.tok, self.sok, self.nok, self.qok
            was_tok = tokl[c]
            if tok == was_tok and sok == sokl[c] and nok == nokl[c] and qok == qokl[c]:
                # No transition (a context the detectors read alike, a hard-disable): only the two
                # re-arms can act; each is called exactly when it would not return at once
                # (HardLockup.soft_nmi_update, SoftLockup.plan), as after a transition.
                hard = self.hard
                if hard.enabled and (hard.snmi_plan[c] is None) == snmi:
                    hard.soft_nmi_update(c, t, snmi)
                if not sok:
                    soft = self.soft
                    if soft.enabled and tok and soft.planned[c] is None:
                        soft.plan(c, t)
                return
            hard = self.hard
            soft = self.soft
            rcu = self.rcu
            hr_last = self.hr_last
            # blocks: materialise lazily computed values before the flags change
            h: float | None = None  # hr_last_run(c, t), once computed
            kt: int | None = None  # floor((t - t0) / p + EPS) on the grid ``kgrid``, once computed
            kgrid: Grid | None = None
            jn: int | None = None  # clock.jiffies(t), once computed
            if not sok and sokl[c]:
                # hr_last_run(c, t), inline
                h = hr_last[c]
                if c not in self.blocked:
                    grid = kgrid = self.grid
                    p = grid.p
                    if p > 0:
                        k = kt = math.floor((t - grid.t0) / p + EPS)
                        if k >= 1:
                            g = grid.t0 + k * p
                            if g >= self.healthy_since[c] - 1e-12 and g > h:
                                h = g
                # SoftLockup.on_sched_block(c, t, h), inline: the touch stamp with the stopper runs
                # since counted (te = max(touch, h) if h >= sched_since - 1e-12 else touch)
                touch = soft.touch_ts[c]
                if h >= self.sched_since[c] - 1e-12 and h > touch:
                    soft.touch_ts[c] = h
                    soft.report_ts[c] = h
                elif soft.report_ts[c] is None and h > soft.marker_at[c]:
                    soft.report_ts[c] = touch
                soft.planned[c] = None
                sokl[c] = False
                self.nonsched.add(c)
                self.nonsched_since[c] = t
            if not qok and qokl[c]:
                qokl[c] = False
                self.nonqs.add(c)
                # RcuStall.on_nonqs(c, t), inline while a grace period is in progress
                if rcu.active:
                    clock = self.clock  # clock.jiffies(t) == gp_start: stopping in the GP's first jiffy
                    jn = math.floor((clock.offset + t) * clock.hz + EPS)
                    if jn == rcu.gp_start:
                        rcu.holdouts.add(c)
                        if c not in self.blocked:
                            rcu.ticking_holdouts.add(c)
                else:
                    rcu._start_gp(t)
                    h = None  # (a new grace period schedules and plans: computed again below)
            if not tok and tokl[c]:
                if h is None:
                    h = self.hr_last_run(c, t)
                hr_last[c] = h
                # HardLockup.on_timer_block(c, t, h), inline
                tb = hard.tb
                if h > tb[c]:
                    tb[c] = h
                clock = self.clock  # the DEC is programmed for the next tick: clock.next_jiffy_after(t)
                if jn is None:
                    jn = math.floor((clock.offset + t) * clock.hz + EPS)
                hard.dec_next[c] = (jn + 1) / clock.hz - clock.offset
                if hard.enabled:
                    grid = self.grid
                    if hard.quiet:
                        g0 = grid.last_le(t)
                        hard.last_reset = g0 if g0 is not None else grid.t0
                        hard.pending = {0}
                    # hard._go_active(t), inline: the heartbeat ticks from the grid point after t
                    hard.quiet = False
                    p = grid.p
                    if p > 0:
                        if kt is None or grid is not kgrid:
                            kt = math.floor((t - grid.t0) / p + EPS)
                        k = kt + 1
                        g = grid.t0 + (k if k > 1 else 1) * p
                        if g < hard.tick_at:
                            hard._tick_from(g)
                tokl[c] = False
                self.blocked.add(c)
                th = rcu.ticking_holdouts  # (RCU's holdouts not in blocked)
                if th:
                    th.discard(c)
            # unblocks: a pending system reset first (it outranks the decrementer), then the
            # hrtimer interrupt, then the scheduler; none on a stalled CPU (tok, sok and qok each
            # imply nok)
            if not nok:
                nokl[c] = False
            else:
                if not nokl[c]:
                    nokl[c] = True
                    nmi = self.nmi  # NmiIpi.on_nmi_ok(c, t) where it has something to do
                    if nmi._waiting == c or c in nmi.late:
                        nmi.on_nmi_ok(c, t)
                    if self.dead:
                        return
                if tok and not tokl[c]:
                    tokl[c] = True
                    self.blocked.discard(c)
                    if c in rcu.holdouts:
                        rcu.ticking_holdouts.add(c)
                    if c < self._tok_lb:
                        self._tok_lb = c
                    self.healthy_since[c] = t
                    hard.dec_next[c] = None  # HardLockup.on_timer_unblock(c, t)
                    grid = self.grid
                    p = grid.p  # grid.next_after(hr_last[c]) <= t + 1e-12, inline:
                    if p > 0:
                        k = math.floor((hr_last[c] - grid.t0) / p + EPS) + 1
                        if grid.t0 + (k if k > 1 else 1) * p <= t + 1e-12:
                            hr_last[c] = t
                            if soft.enabled and not self.dead and not sokl[c]:
                                # soft.hrtimer_run(c, t), inline until a report can be due
                                rep = soft.report_ts[c]
                                if rep is None:
                                    soft.report_ts[c] = t
                                elif soft.rc.vtb is not None:
                                    soft.hrtimer_run(c, t)
                                else:
                                    off = self.clock.offset  # (the test it makes first)
                                    if (round((off + t) * 1e9) >> SOFTLOCKUP_SHIFT) > (
                                        round((off + rep) * 1e9) >> SOFTLOCKUP_SHIFT
                                    ) + soft.thresh_u:
                                        soft.hrtimer_run(c, t)
                            if c in self.forwarded:
                                self.forwarded.discard(c)
                            elif hard.enabled and not self.dead:  # hard.beat_late(c, t), inline
                                hard._beat(c, t)
                if sok and not sokl[c]:
                    sokl[c] = True
                    self.nonsched.discard(c)
                    self.sched_since[c] = t
                    # SoftLockup.on_sched_unblock(c, t), inline: hr_last_run(c, t) = max(hr_last[c], g)
                    # where the last grid point g counts, so "> touch" is either one's
                    soft.planned[c] = None
                    touch = soft.touch_ts[c]
                    late = hr_last[c] > touch
                    if not late and c not in self.blocked:
                        grid = self.grid
                        p = grid.p
                        if p > 0:
                            k = math.floor((t - grid.t0) / p + EPS)
                            if k >= 1:
                                g = grid.t0 + k * p
                                late = g >= self.healthy_since[c] - 1e-12 and g > touch
                    if late:
                        soft.touch_ts[c] = t
                        soft.report_ts[c] = t
                if qok and not qokl[c]:
                    qokl[c] = True
                    self.nonqs.discard(c)
                    # RcuStall.on_qs(c, t) where it has something to do: each of its three steps needs a
                    # grace period in progress and one of these
                    if rcu.active and (rcu.fqs_deferred or rcu.resched_deferred or c in rcu.holdouts):
                        rcu.on_qs(c, t)
            if self.dead:
                return
            # the two re-arms, each called exactly when it would not return at once (as above)
            if hard.enabled and (hard.snmi_plan[c] is None) == snmi:
                hard.soft_nmi_update(c, t, snmi)
            if tokl[c] and not sokl[c] and soft.enabled and soft.planned[c] is None:  # (reads only)
                soft.plan(c, t)
            if tok != was_tok:
                # rcu.poke(t), unless it would do nothing (RcuStall.poke's tests, read-only): the
                # jiffies not frozen and not to freeze, no backtrace waiting, and no report to plan
                # (none possible, or the pending alarm comes first)
                poke = rcu.jiffies_frozen is not None or len(self.blocked) >= self.n or rcu.bt.active
                if not poke and not rcu.printing and rcu.active and rcu.enabled:
                    # not rcu.alarm_stands(), inline
                    fqs3 = rcu.fqs3
                    js = rcu.js if fqs3 is None else fqs3 + rcu.timeout_j
                    if js != _INF:
                        pk = self._pk
                        if js != pk.js:
                            # the times of jiffies int(js) and int(js) + RCU_STALL_RAT_DELAY, kept
                            # while js stays (the clock's hz and offset never change)
                            clock = self.clock
                            hz, offset = clock.hz, clock.offset
                            pk.js = js
                            pk.jt = int(js) / hz - offset
                            pk.jr = (int(js) + RCU_STALL_RAT_DELAY) / hz - offset
                        at = rcu.alarm.at
                        jt = pk.jt
                        hv = rcu.hv_hold
                        poke = at > (hv if hv > jt else jt) and (at > pk.jr or bool(rcu.ticking_holdouts))
                if poke:
                    rcu.poke(t)
                if c == WQ_CPU:  # WqWatchdog.on_timer_change(c, t): only the timer's CPU matters
                    self.wq.on_timer_change(c, t)
        finally:
            # the interrupt arrivals' observer, told right after this one as it would be
            # (IrqArrivals(subscribe=False)), where it would not return at once
            if observer and (cs.ctx == _SOFT_OFF or self._irq_pending[c] or self._irq_due[c] != _INF):
                self.irq._changed(c, t)

    def set_busy(self, c: int, flag: bool, forwarded: bool = True) -> None:
        """The kernel itself holds CPU c hard-disabled (an NMI IPI sender spinning).  ``forwarded``:
        the spin ran inside the heartbeat callback (the watchdog's NMI IPIs); False when it ran
        elsewhere (the RCU stall report's backtrace IPIs, inside the tick): the heartbeat that
        expired meanwhile then runs late at the end."""
        if flag:
            self.busy.add(c)
        else:
            self.busy.discard(c)
            # the sender ran inside its heartbeat callback: hrtimer_forward_now() skips the
            # missed periods, so no late heartbeat (other expired hrtimers still run)
            if forwarded:
                self.forwarded.add(c)
        self._refresh(c, self.env.now, False)
        self.forwarded.discard(c)
        self.hooks.busy_changed(c)

    # -- kernel entry points used by the flows ---------------------------------------------------
    def reconfigure(self, t: float) -> None:
        """``lockup_detector_reconfigure()``: stop and restart the hard and soft detectors."""
        self.grid = Grid(t, self.period)
        for c in range(self.n):
            self.hr_last[c] = t
        self.soft.restart(t)
        self.hard.restart(t)
        for c in range(self.n):
            if not self.tok[c] or not self.sok[c]:
                self._replan(c, t)

    def _replan(self, c: int, t: float) -> None:
        self.hard.soft_nmi_update(c, t, self.states.soft_nmi_reachable(c) and c not in self.busy, force=True)
        if not self.sok[c]:
            self.soft.plan(c, t)

    def write_sysctl(self, name: str, value: int, t: float) -> None:
        """A sysctl written at run time (``lpmsim.kernel.sysctl``)."""
        write(self, name, value, t)

    def watchdog_update(self, t: float) -> None:
        """``proc_watchdog_update()``: new enables/threshold, then ``lockup_detector_reconfigure()``."""
        thresh = self.sys.watchdog_thresh
        self.hard.enabled = self.sys.nmi_watchdog == 1 and thresh > 0
        self.soft.enabled = self.sys.soft_watchdog == 1 and thresh > 0
        if not self.hard.enabled:
            self.hard.stop()
        if thresh > 0:
            self.period = thresh * 400 / 1000.0
            self.soft.thresh_u = 2 * thresh
            self.hard.calc()
            self.reconfigure(t)

    def kernel_lpm_factor(self) -> int:
        """The factor the modelled version itself sets at SUSPENDING: ``nmi_wd_lpm_factor`` (as
        written now) on v6.0+, none before."""
        return self.sys.nmi_wd_lpm_factor if self.cfg.has_lpm_factor else 0

    def hardlockup_stop(self, t: float) -> None:
        """``watchdog_nmi_stop()`` alone (the disable-nmi proposal): the soft detector keeps running."""
        self.hard.enabled = False
        self.hard.stop()

    def hardlockup_start(self, t: float) -> None:
        """``watchdog_nmi_start()``: every CPU's heartbeat re-seeded now."""
        self.hard.enabled = self.sys.nmi_watchdog == 1 and self.sys.watchdog_thresh > 0
        self.hard.restart(t)
        self._replan_blocked(t)

    def set_timeout_pct(self, t: float, pct: int) -> None:
        """New hard-lockup timeouts without a restart (``watchdog_calc_timeouts`` only): the
        adaptive-factor change; the heartbeats and pending CPUs are left as they are."""
        self._timeout_pct(t, pct, f"T{DRMGR_PID}")
        self._replan_blocked(t)

    def set_lpm_factor(self, t: float, pct: int, caller: str) -> None:
        """``watchdog_hardlockup_set_timeout_pct(pct)`` (arch/powerpc/kernel/watchdog.c)."""
        self._timeout_pct(t, pct, caller)
        self.reconfigure(t)

    def _timeout_pct(self, t: float, pct: int, caller: str) -> None:
        """The factor's message and ``watchdog_calc_timeouts()`` with it."""
        self.log.emit(t, f"watchdog: Set the NMI watchdog timeout factor to {pct}%", caller)
        self.hard.pct = pct
        self.hard.calc()

    def _replan_blocked(self, t: float) -> None:
        """Re-plan the lazily computed reports of every CPU not taking timer interrupts."""
        for c in range(self.n):
            if not self.tok[c]:
                self._replan(c, t)

    def touch_nmi_watchdog(self, c: int, t: float) -> None:
        """``touch_nmi_watchdog()`` = arch touch + ``touch_softlockup_watchdog()`` (+ wq touch)."""
        self.hard.arch_touch(c, t)
        self.soft.touch(c, t)
        self.wq.touch(c, t)
        self._replan(c, t)

    def rcu_cpu_stall_reset(self, t: float) -> None:
        self.rcu.stall_reset(t)

    # -- steal-aware / annotate: the detectors consult the dispatch trace log ----------------------
    def enable_dtl(self, mode: str) -> None:
        """Start reading the DTL (``lpmsim.kernel.dtl``): ``steal-aware`` discounts hypervisor-stall
        time silently, ``annotate`` also prints each excused episode; with both, annotate wins."""
        if mode not in DTL_MODES:
            raise ValueError(f"unknown DTL mode {mode!r}; expected one of {', '.join(DTL_MODES)}")
        if self.dtl is None:
            self.dtl = Dtl(self.states, self.env.now)
        if self.dtl_mode != "annotate":
            self.dtl_mode = mode

    def hv_steal(self, c: int, t0: float, t1: float) -> float:
        """Seconds CPU c was stalled in the hypervisor in [t0, t1] (0 without the DTL)."""
        return 0.0 if self.dtl is None else self.dtl.window(c, t0, t1)

    def hv_excused(self, c: int, t0: float, t1: float, threshold_s: float) -> float | None:
        """The steal seconds of [t0, t1] if CPU c's *guest* time there, ``(t1 - t0) - steal``, is
        below ``threshold_s`` (the detector's timeout): its lateness is the hypervisor's, not a
        lockup.  None when it is not excused (or no policy reads the DTL)."""
        s = self.hv_steal(c, t0, t1)
        if s <= 0.0:
            return None
        return s if (t1 - t0) - s < threshold_s - 1e-9 else None

    def hv_annotate(self, t: float, prefix: str, c: int, steal_s: float, by: int) -> None:
        """``annotate``: ``<prefix>: CPU c: memory access stalled N s in the hypervisor`` (N as %u)
        printed by CPU ``by``; the caller prints it once per episode.  Nothing with steal-aware."""
        if self.dtl_mode != "annotate":
            return
        line = self.log.emit(t, hv_stall_line(prefix, c, steal_s), f"C{by}")
        self.report(t, "hv_stall", "annotation", [c], by, line)

    # -- reporting ---------------------------------------------------------------------------------
    def report(
        self, t: float, detector: str, kind: str, cpus: list[int], by: int | None, line: str | None
    ) -> None:
        self.events.append(
            {
                "time_s": float(t),
                "detector": detector,
                "kind": kind,
                "cpus": sorted(cpus),
                "by": by,
                "line": line,
            }
        )

    def panic(self, t: float, msg: str, cause: Cause, cpu: int, outcome: str = "panic") -> None:
        """``panic(msg)``.  ``outcome`` "crash": a panic no ``*_panic`` sysctl asked for (the dump
        of a system reset that arrived after its NMI IPI was given up)."""
        if self.dead:
            return
        line = self.log.emit(t, panic_line(msg), f"C{cpu}")
        self.log.emit(t, f"---[ end Kernel panic - not syncing: {msg.rstrip(chr(10))} ]---", f"C{cpu}")
        self.report(t, "panic", "panic", [cpu], cpu, line)
        self._die(Crash(t, cause, cpu, "crash" if outcome == "crash" else "panic"))

    def crash_oops(self, t: float, msg: str, cause: Cause, cpu: int) -> None:
        if self.dead:
            return
        line = self.log.emit(t, oops_line(msg, 6), f"C{cpu}")
        self.report(t, "panic", "crash", [cpu], cpu, line)
        self._die(Crash(t, cause, cpu, "crash"))

    def _die(self, crash: Crash) -> None:
        self.crash = crash
        self.dead = True

    # -- summary -----------------------------------------------------------------------------------
    @property
    def outcome(self) -> str:
        if self.crash is None:
            return "survived"
        return self.crash.kind

    def watchdog_summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for det in DETECTORS:
            evs = [e for e in self.events if e["detector"] == det and e["kind"] != "unstuck"]
            cpus = sorted({c for e in evs for c in e["cpus"]})
            out[det] = {
                "reports": len(evs),
                "cpus": cpus,
                "first_s": float(evs[0]["time_s"]) if evs else None,
            }
        if self.dtl is not None:
            evs = [e for e in self.events if e["detector"] == "hv_stall"]
            out["hv_stall"] = {
                "reports": len(evs),
                "cpus": sorted({c for e in evs for c in e["cpus"]}),
                "first_s": float(evs[0]["time_s"]) if evs else None,
            }
        out["nmi_ipi"] = {
            "sent": self.nmi.sent,
            "timed_out": self.nmi.timed_out,
            "unrecoverable": self.nmi.unrecoverable,
        }
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "crash": None if self.crash is None else self.crash.as_dict(),
            "watchdogs": self.watchdog_summary(),
            "events": [dict(e) for e in self.events],
        }


def finite_or_none(x: float) -> float | None:
    return None if math.isinf(x) else x


class KernelRun:
    """The kernel model of one run with its flows: what the runner starts and reads back."""

    def __init__(
        self,
        env: Environment,
        states: CpuStates,
        cfg: Kernel,
        script: tuple[ScriptEntry, ...],
        rng: np.random.Generator,
        migration: Migration | None = None,
        guest: GuestRtas | None = None,
        policy: Callable[[KernelModel, Migration], LpmPolicy] | None = None,
        irq_rate_hz: float = 0.0,
        irq_rng: np.random.Generator | None = None,
    ) -> None:
        """``irq_rate_hz``: must-hard-mask interrupts per second per vCPU (``workload.irq_rate_hz``),
        drawn from ``irq_rng`` (``lpmsim.kernel.irq_arrivals``); 0: only those ``irq.deliver`` sends."""
        hooks: DefaultGuestHooks
        if guest is not None:
            hooks = AdaptedGuestHooks(env, states, guest, cfg.rtas_touches_memory)
        else:
            hooks = DefaultGuestHooks(env, states)
        self.model = KernelModel(env, states, cfg, rng, hooks, irq_rate_hz, irq_rng)
        self.irq = self.model.irq
        self.script = Script(env, states, hooks, script, self.model.script_tasks)
        self.mobility: Mobility | None = None
        self.end_s: float | None = None
        if migration is not None:
            self.mobility = Mobility(
                self.model, migration, None if policy is None else policy(self.model, migration)
            )
            env.process(self.mobility.run(), name="mobility")

    def stop_time(self, limit: float, completed_s: float | None) -> float:
        """When the run may stop: the LPM flow over and the transfer complete, plus the tail."""
        if self.mobility is None:
            return limit
        flow_end = self.mobility.times["end_s"]
        if flow_end is None or completed_s is None:
            return limit
        return min(limit, max(flow_end, completed_s) + self.model.cfg.tail_s)

    @staticmethod
    def empty_summary() -> dict[str, Any]:
        """The kernel keys of a run without a kernel model (nothing scripted, not migrating)."""
        return {
            "outcome": "survived",
            "crash": None,
            "watchdogs": {
                **{d: {"reports": 0, "cpus": [], "first_s": None} for d in DETECTORS},
                "nmi_ipi": {"sent": 0, "timed_out": 0, "unrecoverable": 0},
            },
            "events": [],
        }

    def summary(self) -> dict[str, Any]:
        out = self.model.summary()
        if self.mobility is not None:
            out["lpm"] = {
                k: finite_or_none(v) if v is not None else None for k, v in self.mobility.times.items()
            }
        return out

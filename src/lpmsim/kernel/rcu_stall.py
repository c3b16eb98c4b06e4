"""RCU CPU-stall warnings.

Mirrors kernel/rcu/tree_stall.h (``check_cpu_stall``, ``print_cpu_stall``,
``print_other_cpu_stall``, ``rcu_dump_cpu_stacks``, ``panic_on_rcu_stall``,
``record_gp_stall_check_time``, ``rcu_cpu_stall_reset``) and kernel/rcu/tree.c (``rcu_gp_fqs``,
``rcu_init_geometry``), read in stored copies of v5.11-v5.14 and ~v6.12, with the commits below.

Grace periods as the kernel sees them: a GP ends when every CPU has passed a quiescent state
since it began.  ASSUMPTION: a CPU that can schedule passes quiescent states continuously, and a
healthy system completes GPs within milliseconds, so a GP that stalls starts when the first CPU
stops being able to schedule; its holdouts are the CPUs unable to schedule at its start or
within its first jiffy (a CPU notices a new GP, and reports, at its next tick).  When
the last holdout reports, the next GP starts at once with the CPUs unable to schedule then.

* ``rcu_state.gp_seq`` (kernel/rcu/rcu.h ``rcu_seq_start``/``rcu_seq_end``): the low two bits are
  the GP state, so during a GP it is 1 mod 4; the reports print ``rcu_seq_current(&gp_seq)``,
  the raw value.  The model starts at 10000 (ASSUMPTION: the count since boot is not modelled) and
  counts 4 per GP it tracks: the first stalled GP prints ``g=10005``.
* ``jiffies_stall = gp_start + timeout*HZ``.  On each scheduling-clock tick (only CPUs taking
  timer interrupts) ``check_cpu_stall``: a holdout CPU reports itself at ``jiffies >=
  jiffies_stall`` (``INFO: %s self-detected stall on CPU``); any other CPU at ``jiffies >=
  jiffies_stall + RCU_STALL_RAT_DELAY (2)`` (``INFO: %s detected stalls on CPUs/tasks:``).  At the
  same jiffy the lowest-numbered CPU ticks first (ASSUMPTION).
* The trailer: ``pr_err("\\t(t=%lu jiffies g=%ld q=%lu ncpus=%d)")`` from v6.3 (3ab955de929a)
  (``Kernel.rcu_trailer_prefixed``; `` ncpus=`` from v5.19, ``Kernel.rcu_trailer_ncpus``); older
  ones ``pr_cont("\\t(t=%lu jiffies g=%ld q=%lu)\\n")`` (5.19-6.1 with `` ncpus=%d``) -
  the per-CPU line before it ends with a newline, so the continuation is a record of its own,
  printed with the timestamp but without the ``rcu: `` prefix (pr_cont does not apply pr_fmt).
  ``ncpus=`` is ``rcu_state.n_online_cpus``: every vCPU of the partition.
* ``print_cpu_stall_info()`` calls ``touch_nmi_watchdog()`` on the reporting CPU (for each CPU line;
  once is enough here): a self-detecting CPU thus re-bases its own soft-lockup and workqueue
  stamps.
* Both reports then ``rcu_dump_cpu_stacks()``: every holdout still holding the GP, in CPU order,
  through ``dump_cpu_task()`` (``lpmsim.kernel.backtrace``): the self-detecting CPU dumps itself
  in place, every other holdout gets a "safe" NMI IPI with a 5 s timeout; the reporter spins
  hard-disabled inside the tick meanwhile (so the report lasts 5 s per holdout that cannot take an
  interrupt).  ``jiffies_stall`` is ``jiffies + ULONG_MAX/2`` while printing, and only after the
  report ``jiffies + 3*timeout + 3`` (b9c5dc2856c1 "rcu: Start timing stall repetitions after
  warning complete", v5.14); then ``panic_on_rcu_stall()``: ``if (++cpu_stall <
  max_rcu_stall_to_panic) return; if (panic_on_rcu_stall) panic("RCU Stall\\n")`` - at the end
  of the report.  ``rcu_check_gp_kthread_starvation()`` prints nothing here: the GP kthread runs on
  any CPU that can schedule (ASSUMPTION: one always can, except during the suspend).
* ``rcu_cpu_stall_reset()`` (``Kernel.rcu_reset``), called by every CPU in ``do_join`` with
  interrupts hard-disabled:

  - ``rest_of_gp`` (before v5.15): ``jiffies_stall = jiffies + ULONG_MAX / 2``: no warning for the
    rest of this GP;
  - ``timeout`` (a80be428fbc1 "rcu: Do not disable GP stall detection in rcu_cpu_stall_reset()",
    v5.15 .. 6.6.2): ``jiffies_stall = jiffies + rcu_jiffies_till_stall_check()`` with the
    ``jiffies`` of that moment, which are stale after a suspend: ``jiffies`` only advance on a
    tick (``tick_do_update_jiffies64``), and from the moment no CPU takes timer interrupts (all
    hard-disabled in ``multi_cpu_stop``, then suspended) until the first tick after the resume
    they stand still, while the timebase (the model's clock) runs on.  So the new timeout counts
    from the jiffy when ticks stopped, and a blackout longer than the timeout gives a report at
    the first tick after ``stop_machine`` ends;
  - ``third_fqs`` (b96e7a5fa0ba, "Fixes: a80be428fbc1", v6.7 and 6.6.3):
    ``nr_fqs_jiffies_stall = 3; jiffies_stall = ULONG_MAX``: checks return early until the third
    force-quiescent-state pass, which sets ``jiffies_stall = jiffies + timeout`` with fresh
    jiffies.  FQS passes every ``jiffies_till_next_fqs = RCU_JIFFIES_TILL_FORCE_QS + nr_cpu_ids /
    RCU_JIFFIES_FQS_DIV`` = ``1 + (HZ > 250) + (HZ > 500) + nr_cpu_ids / 256`` jiffies (tree.h
    macros, tree.c ``rcu_init_geometry``; ``adjust_jiffies_till_sched_qs`` only sets
    ``jiffies_to_sched_qs``); ``nr_cpu_ids`` is taken as the partition's vCPU count (the model
    has no separate possible-CPU count).  The first pass a period after the reset (ASSUMPTION).

  With no GP in progress the reset has no effect: the next GP's ``record_gp_stall_check_time``
  sets a fresh ``jiffies_stall`` (and ``nr_fqs_jiffies_stall = 0``).
* The kernel's own IPIs to holdouts (kernel/rcu/tree.c ``rcu_implicit_dynticks_qs``, read in
  stored v4.12-era, v5.x and v6.x copies: the time is the same in every modelled version - v4.x
  ``if (jiffies - gp_start > rcu_jiffies_till_stall_check() / 2) resched_cpu(cpu)`` on every pass,
  later the ``jiffies_resched`` test below; the irq_work came with "rcu: Make RCU CPU stall warnings
  check for irq-disabled CPUs" (v4.15, ``Kernel.rcu_stall_irq_work``; before it only
  ``resched_cpu``'s IPI, at the same pass, which hard-masks the holdout the same way); the newest
  trees return -1 and call ``resched_cpu`` from ``force_qs_rnp`` after the
  node lock, the same IPI; tree_stall.h ``record_gp_stall_check_time``): ``jiffies_resched = gp_start + j1 / 2``
  (``j1 = rcu_jiffies_till_stall_check()``, integer division), and every force-quiescent-state
  pass of the GP kthread, for each CPU still in ``rnp->qsmask``, once ``time_after(jiffies,
  jiffies_resched)``: ``resched_cpu(cpu)`` (at most every ``jiffies_to_sched_qs``, rate-limited by
  ``rdp->last_fqs_resched``) and, once per GP (``!rdp->rcu_iw_pending && rdp->rcu_iw_gp_seq !=
  rnp->gp_seq``), ``irq_work_queue_on(&rdp->rcu_iw, cpu)``.  ``resched_cpu`` -> ``resched_curr``
  sends ``smp_send_reschedule`` only if the target's current task does not have
  ``TIF_NEED_RESCHED`` yet (``test_tsk_need_resched`` returns early) - and a CPU that cannot
  schedule keeps it set - and the irq_work is queued once per GP: so each holdout gets its IPIs
  (reschedule + call-function) at the first FQS pass after ``jiffies_resched``, and none later in
  the same GP.  ``jiffies_resched`` is written nowhere else (a stall report or
  ``rcu_cpu_stall_reset()`` leave it).  FQS passes run at ``gp_start + k * jiffies_till_next_fqs``
  (``jiffies_till_first_fqs`` has the same default, ``rcu_init_geometry``), so the IPIs go at
  ``gp_start + (j1 / 2 / fqs + 1) * fqs`` jiffies: with the 21 s timeout at HZ=100, 1051 jiffies
  (10.51 s) after the GP began.  The pass runs in the GP kthread: while no CPU can schedule it
  waits for the first that can (ASSUMPTION: at once then).  A soft-masked holdout takes the IPI as
  an external interrupt and is hard-disabled from then on (``IrqArrivals.deliver``; ASSUMPTION:
  the GP kthread runs on another core, so not a ``msgsndp`` doorbell), so no soft-NMI reaches it;
  one stalled in the hypervisor takes it when it runs again.  This is independent of
  ``rcu_cpu_stall_suppress`` (which only silences ``check_cpu_stall``).  The per-CPU line's fourth
  flag (``print_cpu_stall_info``: ``rdp->rcu_iw_pending ? '0' + min(delta, 9) : "!."[!delta]``):
  ``0`` while the queued irq_work has not run (the holdout has not taken an interrupt since),
  ``.`` once it ran or while the CPU takes ticks, ``!`` when none was queued in this GP.  Before
  v4.15 (no ``rcu_iw``) the line has three flags (``%d-%c%c%c``).
* steal-aware / annotate (docs/policies.md): holdouts whose guest time since the timeout began
  counting (GP start, or the re-arm after a reset) is below the timeout are excused and not listed;
  with none left there is no report and the check moves to when the first could reach the timeout.
  annotate prints ``rcu: CPU %d: memory access stalled %u s in the hypervisor`` once per GP.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

from lpmsim.kernel.backtrace import CpuBacktraces
from lpmsim.kernel.timing import EPS, Alarm

if TYPE_CHECKING:
    from lpmsim.kernel.model import KernelModel

RCU_STALL_RAT_DELAY = 2
_INF = math.inf
RCU_JIFFIES_FQS_DIV = 256  # kernel/rcu/tree.h
GP_SEQ_BASE = 10000  # rcu_state.gp_seq when the run starts (ASSUMPTION: idle, a multiple of 4)
RCU_SEQ_STATE_MASK = 3  # kernel/rcu/rcu.h


def jiffies_till_force_qs(hz: int) -> int:
    """``RCU_JIFFIES_TILL_FORCE_QS`` (kernel/rcu/tree.h): ``1 + (HZ > 250) + (HZ > 500)``."""
    return 1 + (hz > 250) + (hz > 500)


class RcuStall:
    def __init__(self, m: KernelModel) -> None:
        self.m = m
        cfg = m.cfg
        self.enabled = cfg.rcu_cpu_stall_suppress == 0
        self.timeout_j = cfg.rcu_cpu_stall_timeout * cfg.hz
        self.nr_cpu_ids = m.n  # possible CPUs: the partition's vCPUs (no separate count modelled)
        # rcu_init_geometry(): jiffies_till_next_fqs = RCU_JIFFIES_TILL_FORCE_QS + nr_cpu_ids / 256
        self.fqs_j = jiffies_till_force_qs(cfg.hz) + self.nr_cpu_ids // RCU_JIFFIES_FQS_DIV
        self.active = False
        self.holdouts: set[int] = set()
        # the holdouts taking ticks (not in m.blocked), kept with every change of either set
        # (here and in KernelModel._refresh): those that can report themselves
        self.ticking_holdouts: set[int] = set()
        self.gp_start = 0
        self.js: float = math.inf
        self.fqs3: int | None = None
        self.fqs_deferred = False  # reset while no CPU could run the GP kthread: FQS not yet counting
        self.gp_seq = GP_SEQ_BASE  # rcu_state.gp_seq: low two bits the GP state (01 in a GP)
        self.jiffies_frozen: int | None = None  # jiffies since no CPU takes ticks (stale), else None
        self.bt = CpuBacktraces(m)  # rcu_dump_cpu_stacks() of the report in progress
        self.printing = False  # a report (with its stack dumps) in progress: jiffies + ULONG_MAX/2
        self.js_written = False  # jiffies_stall written by someone else during the report (reset)
        self.reports_this_gp = 0
        self.cpu_stall = 0
        self.alarm = Alarm(m.env, self._fire)
        # rcu_implicit_dynticks_qs(): jiffies_resched = gp_start + j1 / 2; the IPIs at the first
        # FQS pass after it
        self.resched_k = (self.timeout_j // 2) // self.fqs_j + 1
        self.resched_deferred = False  # that pass is due but no CPU can run the GP kthread
        self.resched_ipis = 0  # IPIs sent to holdouts (reschedule + irq_work, counted once)
        self.iw_at: dict[int, float] = {}  # holdout -> when its rcu_iw was queued in this GP
        # steal-aware / annotate
        self.base_j = 0  # jiffy the stall timeout counts from: GP start, or the re-arm after a reset
        self.hv_noted: set[int] = set()  # holdouts of this GP already annotated
        self.hv_hold = -math.inf  # all holdouts excused: none can report before this time

    # -- grace periods ---------------------------------------------------------------------------
    def _start_gp(self, t: float) -> None:
        m = self.m
        self.resched_deferred = False
        self.iw_at.clear()
        self.holdouts = set(m.nonqs)
        self.ticking_holdouts = self.holdouts - m.blocked
        # rcu_seq_end() of the GP that ended (or of the fast GPs a healthy system ran meanwhile)
        self.gp_seq = (self.gp_seq | RCU_SEQ_STATE_MASK) + 1
        if not self.holdouts:
            self.active = False
            return
        self.gp_seq += 1  # rcu_seq_start(): ...01 while the GP is in progress
        self.active = True
        self.gp_start = m.clock.jiffies(t)
        self.base_j = self.gp_start
        self.hv_noted.clear()
        self.hv_hold = -math.inf
        self.js = self.gp_start + self.timeout_j
        self.fqs3 = None
        self.fqs_deferred = False  # record_gp_stall_check_time(): nr_fqs_jiffies_stall = 0
        self.reports_this_gp = 0
        # the first FQS pass with time_after(jiffies, jiffies_resched)
        j_r = self.gp_start + self.resched_k * self.fqs_j
        # (kept out of the event heap until it is the earliest of its kind: ``SideCalls``; one is
        # planned at every grace period's start, and most find their grace period over)
        m.env.side.call_at(m.clock.jiffy_time(j_r), functools.partial(self._resched, self.gp_seq))
        self.poke(t)

    def _resched(self, g: int) -> None:
        """The FQS pass after ``jiffies_resched``: ``resched_cpu()`` and ``irq_work_queue_on()``
        for every holdout, if some CPU can run the GP kthread (else at the first that can)."""
        m = self.m
        if m.dead or not self.active or g != self.gp_seq:
            return
        if len(m.nonsched) >= m.n:
            self.resched_deferred = True
            return
        self._send_resched(m.env.now)

    def _send_resched(self, t: float) -> None:
        m = self.m
        self.resched_deferred = False
        for h in sorted(self.holdouts):
            # a ticking holdout runs the irq_work at once (-inf: already ran)
            self.iw_at[h] = -math.inf if m.tok[h] else t
            self.resched_ipis += 1
            m.irq.deliver(h)

    def on_nonqs(self, c: int, t: float) -> None:
        if not self.active:
            self._start_gp(t)
        elif self.m.clock.jiffies(t) == self.gp_start:
            # a CPU learns of a new GP at its next tick: stopping within the GP's first jiffy it
            # has not reported a quiescent state for it yet
            self.holdouts.add(c)
            if c not in self.m.blocked:
                self.ticking_holdouts.add(c)

    def on_qs(self, c: int, t: float) -> None:
        if self.fqs_deferred and self.active:
            # a CPU can schedule again: the GP kthread's FQS passes count from now
            self.fqs_deferred = False
            self.fqs3 = self.m.clock.jiffies(t) + 3 * self.fqs_j
            self.poke(t)
        if self.active and c in self.holdouts:
            self.holdouts.discard(c)
            self.ticking_holdouts.discard(c)
            if not self.holdouts:
                self._start_gp(t)
        if self.resched_deferred and self.active and len(self.m.nonsched) < self.m.n:
            self._send_resched(t)  # the GP kthread runs again: its overdue FQS pass

    def stall_reset(self, t: float) -> None:
        """``rcu_cpu_stall_reset()`` as the kernel version does it (``Kernel.rcu_reset``)."""
        if not self.active:
            return
        m = self.m
        mode = m.cfg.rcu_reset
        self.fqs_deferred = False
        self.js_written = self.printing  # the report in progress must not overwrite it
        if mode == "third_fqs":
            # nr_fqs_jiffies_stall = 3; jiffies_stall = ULONG_MAX: the 3rd FQS pass re-arms.  The
            # passes run in the GP kthread: while no CPU can schedule (all held in stop_machine)
            # they wait for the first that can (ASSUMPTION: then a period apart)
            self.js = math.inf
            if len(m.nonsched) >= m.n:
                self.fqs3 = None
                self.fqs_deferred = True
            else:
                self.fqs3 = m.clock.jiffies(t) + 3 * self.fqs_j
        elif mode == "timeout":
            # jiffies_stall = jiffies + rcu_jiffies_till_stall_check(), from the jiffies variable
            # as it stands: stale while no CPU has taken a tick since they stopped
            j = self.jiffies_var(t)
            self.js = j + self.timeout_j
            self.fqs3 = None
            self.base_j = j
            self.hv_hold = -math.inf
            self.poke(t)
            return
        else:
            # jiffies_stall = jiffies + ULONG_MAX / 2: silent for the rest of this GP
            self.js = math.inf
            self.fqs3 = None
        if self.m.dtl is not None:
            self.hv_hold = -math.inf
            self.poke(t)

    def jiffies_var(self, t: float) -> int:
        """The ``jiffies`` variable at ``t``: frozen since the last tick while no CPU takes one."""
        return self.jiffies_frozen if self.jiffies_frozen is not None else self.m.clock.jiffies(t)

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
        """Re-plan the next check; called at every change of a CPU's ``timer_ok``."""
        m = self.m
        # jiffies advance only while some CPU takes ticks (tick_do_update_jiffies64 catches up)
        if len(m.blocked) >= m.n:
            if self.jiffies_frozen is None:
                self.jiffies_frozen = m.clock.jiffies(t)
        else:
            self.jiffies_frozen = None
        if self.bt.active:
            self.bt.on_timer_change(t)
        if self.printing or not self.active or not self.enabled or m.dead:
            return
        if self.alarm_stands():
            return
        nxt = self._next(t)
        if nxt is not None:
            self.alarm.set(m.clock.jiffy_time(nxt[0]))

    def alarm_stands(self) -> bool:
        """Whether nothing ``_next`` could plan now would come before the pending alarm (or no
        report is possible yet): ``poke`` has nothing to re-plan."""
        fqs3 = self.fqs3
        js = self.js if fqs3 is None else fqs3 + self.timeout_j  # _js_eff()
        if js == _INF:
            return True  # no report possible yet (jiffies_stall is never -inf)
        clock = self.m.clock
        hz, offset = clock.hz, clock.offset
        at = self.alarm.at
        jt = int(js) / hz - offset  # clock.jiffy_time(int(js))
        hv = self.hv_hold
        if at <= (hv if hv > jt else jt):  # max(jt, hv)
            return True  # the pending alarm re-evaluates first
        # _next() gives a report by another CPU (its jiffy at least jiffies_stall + 2), unless a
        # holdout takes ticks (it reports itself from jiffies_stall on): with none, nothing can
        # come before an alarm pending by jiffies_stall + 2 (the alarm would keep its time)
        return at <= (int(js) + RCU_STALL_RAT_DELAY) / hz - offset and not self.ticking_holdouts

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
            ticking = self.ticking_holdouts
            if excused:
                ticking = ticking - excused
            me = min(ticking, default=None)
            if me is not None:
                return (j_self, me, True)
        return (j_other, first, first in self.holdouts and first not in excused)

    def _fire(self, t: float) -> None:
        m = self.m
        if not self.active or m.dead or not self.enabled or self.printing:
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

    def _print(self, t: float, j: int, c: int, selfd: bool, holdouts: list[int] | None = None) -> None:
        """``print_cpu_stall`` / ``print_other_cpu_stall``: the header, the per-CPU lines and the
        trailer at ``t``, then ``rcu_dump_cpu_stacks()`` (which may take seconds); the re-warn time
        and ``panic_on_rcu_stall()`` when the dump is over."""
        m = self.m
        name = m.cfg.rcu_name
        caller = f"C{c}"
        tj = j - self.gp_start
        fqs = tj // self.fqs_j
        kind = "rewarn" if self.reports_this_gp else ("self-detected" if selfd else "smp-detected")
        self.reports_this_gp += 1
        g = self.gp_seq
        # the trailer: `` ncpus=%d`` from v5.19 (rcu_trailer_ncpus); pr_err from v6.3
        # (rcu_trailer_prefixed), before it pr_cont after a complete line: a record of its own,
        # without the pr_fmt ``rcu: `` prefix
        ncpus = f" ncpus={m.n}" if m.cfg.rcu_trailer_ncpus else ""
        pre = "rcu: " if m.cfg.rcu_trailer_prefixed else ""
        if selfd:
            line = m.log.emit(t, f"rcu: INFO: {name} self-detected stall on CPU", caller)
            m.log.emit(t, "rcu: \t" + self._cpu_info(c, tj, fqs), caller)
            m.log.emit(t, f"{pre}\t(t={tj} jiffies g={g} q=0{ncpus})", caller)
            cpus = [c]
        else:
            line = m.log.emit(t, f"rcu: INFO: {name} detected stalls on CPUs/tasks:", caller)
            cpus = sorted(self.holdouts) if holdouts is None else holdouts
            for h in cpus:
                m.log.emit(t, "rcu: \t" + self._cpu_info(h, tj, fqs), caller)
            m.log.emit(t, f"{pre}\t(detected by {c}, t={tj} jiffies, g={g}, q=0{ncpus})", caller)
        m.report(t, "rcu_stall", kind, cpus, c, line)
        # print_cpu_stall_info() calls touch_nmi_watchdog() on the reporting CPU for each line
        # ("We could be printing a lot while holding a spinlock.  Avoid triggering hard lockup.")
        m.touch_nmi_watchdog(c, t)
        # rcu_dump_cpu_stacks(): every CPU still in rnp->qsmask, in CPU order (the self-detecting
        # CPU among them); jiffies_stall = jiffies + ULONG_MAX/2 meanwhile
        dump = (
            sorted(self.holdouts) if holdouts is None else sorted(set(holdouts) | ({c} if selfd else set()))
        )
        self.printing = True
        self.js_written = False
        self.js = math.inf
        self.bt.dump(
            c,
            dump,
            t,
            lambda h: self.active and h in self.holdouts and g == self.gp_seq,
            lambda t_end: self._printed(t_end, c, g),
        )

    def _printed(self, t: float, c: int, g: int) -> None:
        """The report is over: ``jiffies_stall = jiffies + 3 * timeout + 3`` if no new GP wrote it
        meanwhile, then ``panic_on_rcu_stall()``."""
        m = self.m
        self.printing = False
        # check_cpu_stall(): "if (READ_ONCE(rcu_state.jiffies_stall) == jn)" - not if a new GP or a
        # reset wrote it meanwhile
        if self.active and g == self.gp_seq and not self.js_written:
            self.js = self.jiffies_var(t) + 3 * self.timeout_j + 3
        self.cpu_stall += 1
        if self.cpu_stall >= m.cfg.max_rcu_stall_to_panic and m.cfg.panic_on_rcu_stall:
            m.panic(t, "RCU Stall\n", "rcu_stall_panic", c)
        if m.dead:
            return
        self.poke(t + 1e-6)

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
        m = self.m
        ticking = m.tok[c]
        # rcu_iw_pending ? '0' + delta : "!."[!delta]; the handler runs at the CPU's first
        # interrupt after the queueing (a tick: healthy_since is the last time ticks resumed)
        queued = self.iw_at.get(c)
        if ticking or (queued is not None and m.healthy_since[c] >= queued):
            iw = "."
        else:
            iw = "!" if queued is None else "0"
        flags = "..." + iw if m.cfg.rcu_stall_irq_work else "..."  # %d-%c%c%c before v4.15
        ticks = tj if ticking else 0
        return f"{c}-{flags}: ({ticks} ticks this GP) idle=0000/1/0x4000000000000000 softirq=0/0 fqs={fqs}"

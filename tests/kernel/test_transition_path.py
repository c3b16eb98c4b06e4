"""``KernelModel._refresh``, with the detectors' transition hooks written out in it, is the model
that calls them.

The transition path runs at every change of every vCPU, so ``_refresh`` carries inline copies of
the small hooks (``SoftLockup.on_sched_block``/``on_sched_unblock``/``hrtimer_run``'s first test,
``RcuStall.on_nonqs``/``on_qs``/``poke``'s tests, ``HardLockup.on_timer_block``/``_go_active``/
``on_timer_unblock``, ``WqWatchdog.on_timer_change``, ``NmiIpi.on_nmi_ok``, ``hr_last_run``) and
tells the interrupt arrivals after itself instead of their own observer (docs/performance.md,
"Round 6").  ``Reference`` below is the model as it was before (``_refresh`` of 6c3bb2a, calling
each hook), with the interrupt arrivals as an observer of their own.  On random states reached by
random writes (contexts held and released, stalls by two owners, spins, hard-disables, the
kernel's own busy spins, the fluid guest's combined writes, waits long enough for every detector
to report), the two models must have the same picture after every write: every detector's fields,
the event heap (times, priorities, the scheduling order), and the reports and log 40 s after.
Several kernels: the default, the pre-rework watchdog with the old RCU reset, the VTB clock,
stop_machine, and a policy reading the dispatch trace log.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import lpmsim.kernel.model as model_mod
from lpmsim.config.loader import build_scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import GUEST, IRQS_OFF, NO_SCHEDULE, CpuState, CpuStates, Ctx
from lpmsim.kernel.model import KernelModel, KernelRun
from lpmsim.kernel.timing import EPS, Alarm

N = 4
CTXS = list(Ctx)
OWNERS = [GUEST, GUEST, "script#0", "rtas"]
STALLERS = [GUEST, GUEST, "suspend"]
LOCKS = [None, None, "zone->lock"]

op = st.one_of(
    st.tuples(st.just("ctx"), st.integers(0, N - 1), st.sampled_from(CTXS), st.sampled_from(OWNERS)),
    st.tuples(st.just("release"), st.integers(0, N - 1), st.sampled_from(OWNERS[2:])),
    st.tuples(st.just("stall"), st.integers(0, N - 1), st.booleans(), st.sampled_from(STALLERS)),
    st.tuples(st.just("spin"), st.integers(0, N - 1), st.sampled_from(LOCKS)),
    st.tuples(st.just("steal"), st.integers(0, N - 1), st.sampled_from([0.0, 0.5, 1.0])),
    st.tuples(st.just("hard_dis"), st.integers(0, N - 1)),
    st.tuples(st.just("busy"), st.integers(0, N - 1), st.booleans(), st.booleans()),
    st.tuples(
        st.just("publish"),
        st.integers(0, N - 1),
        st.sampled_from([0.0, 1.0]),
        st.sampled_from(CTXS),
        st.sampled_from(LOCKS),
        st.booleans(),
    ),
    st.tuples(st.just("unpublish"), st.integers(0, N - 1), st.sampled_from(CTXS)),
    st.tuples(st.just("stop_machine")),
    st.tuples(st.just("irq"), st.integers(0, N - 1)),
    st.tuples(st.just("wait"), st.sampled_from([0.004, 0.01, 0.3, 1.7, 4.0, 12.0, 25.0])),
)

KERNELS: dict[str, dict[str, Any]] = {
    "default": {},
    "pre-rework": {"version": "pre-v6.0"},
    "timeout-reset": {"version": "6.0"},
    "vtb": {"softlockup_clock": "vtb"},
}


class Reference(KernelModel):
    """The kernel model of 6c3bb2a's transition path: each detector's hook called."""

    def __init__(self, *a: Any, **k: Any) -> None:
        super().__init__(*a, **k)
        # the stop_machine hooks and the interrupt arrivals as observers of their own, right
        # before and after the model
        obs = self.states._observers
        if self._hooks_first is not None:
            obs.insert(obs.index(self._refresh), self._hooks_first._changed)
            self._hooks_first = None
        self.states.subscribe(self.irq._changed, steal=False)

    def _refresh(self, c: int, t: float, observer: bool = True) -> None:
        if self.dead:
            return
        cs = self._cs[c]
        busy = c in self.busy
        running = not cs.stalled
        ctx = cs.ctx
        tok = running and ctx not in IRQS_OFF and not busy
        sok = running and cs.spinning is None and ctx not in NO_SCHEDULE and not busy
        nok = running
        snmi = running and ctx == Ctx.IRQS_SOFT_OFF and not cs.hard_dis and not busy
        qok = sok or (running and c in self._rdv)
        was_tok = self.tok[c]
        if tok == was_tok and sok == self.sok[c] and nok == self.nok[c] and qok == self.qok[c]:
            hard = self.hard
            if hard.enabled and (hard.snmi_plan[c] is None) == snmi:
                hard.soft_nmi_update(c, t, snmi)
            if not sok:
                soft = self.soft
                if soft.enabled and tok and soft.planned[c] is None:
                    soft.plan(c, t)
            return
        timer_changed = tok != was_tok
        tokl, sokl, nokl, qokl = self.tok, self.sok, self.nok, self.qok
        if not sok and sokl[c]:
            self.soft.on_sched_block(c, t, self.hr_last_run(c, t))
            sokl[c] = False
            self.nonsched.add(c)
            self.nonsched_since[c] = t
        if not qok and qokl[c]:
            qokl[c] = False
            self.nonqs.add(c)
            self.rcu.on_nonqs(c, t)
        if not tok and tokl[c]:
            h = self.hr_last_run(c, t)
            self.hr_last[c] = h
            self.hard.on_timer_block(c, t, h)
            tokl[c] = False
            self.blocked.add(c)
            self.rcu.ticking_holdouts.discard(c)  # (kept with blocked: RcuStall reads it)
        if nok and not nokl[c]:
            nokl[c] = True
            self.nmi.on_nmi_ok(c, t)
            if self.dead:
                return
        elif not nok:
            nokl[c] = False
        if tok and not tokl[c]:
            tokl[c] = True
            self.blocked.discard(c)
            if c in self.rcu.holdouts:
                self.rcu.ticking_holdouts.add(c)
            if c < self._tok_lb:
                self._tok_lb = c
            self.healthy_since[c] = t
            self.hard.on_timer_unblock(c, t)
            if self.grid.next_after(self.hr_last[c]) <= t + 1e-12:
                self.hr_last[c] = t
                self.soft.hrtimer_run(c, t)
                if c in self.forwarded:
                    self.forwarded.discard(c)
                else:
                    self.hard.beat_late(c, t)
        if sok and not sokl[c]:
            sokl[c] = True
            self.nonsched.discard(c)
            self.sched_since[c] = t
            self.soft.on_sched_unblock(c, t)
        if qok and not qokl[c]:
            qokl[c] = True
            self.nonqs.discard(c)
            self.rcu.on_qs(c, t)
        if self.dead:
            return
        hard = self.hard
        if hard.enabled and (hard.snmi_plan[c] is None) == snmi:
            hard.soft_nmi_update(c, t, snmi)
        if not sokl[c]:
            soft = self.soft
            if soft.enabled and tokl[c] and soft.planned[c] is None:
                soft.plan(c, t)
        if timer_changed:
            self.rcu.poke(t)
            self.wq.on_timer_change(c, t)


@contextlib.contextmanager
def _model(cls: type[KernelModel]) -> Iterator[None]:
    orig = model_mod.KernelModel
    model_mod.KernelModel = cls  # type: ignore[misc]
    try:
        yield
    finally:
        model_mod.KernelModel = orig  # type: ignore[misc]


def _state(c: CpuState) -> tuple[Any, ...]:
    return (c.ctx, c.stalled, c.spinning, c.task, c.last_qs, c.steal_frac, c.hard_dis, sorted(c.stall_by))


def _plain(v: Any, depth: int = 0) -> Any:
    """A comparable picture of a field (numbers, flags, sets, lists, alarms' times)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return "nan" if isinstance(v, float) and math.isnan(v) else v
    if isinstance(v, Alarm):
        return ("alarm", v.at)
    if depth < 3 and isinstance(v, (list, tuple)):
        return [_plain(x, depth + 1) for x in v]
    if depth < 3 and isinstance(v, (set, frozenset)):
        return sorted(v)
    if depth < 3 and isinstance(v, dict):
        return [(k, _plain(x, depth + 1)) for k, x in v.items()]
    if isinstance(v, KernelModel):
        return "KernelModel"  # (either class)
    return type(v).__name__


def _fields(obj: Any) -> dict[str, Any]:
    names = list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        names += list(getattr(cls, "__slots__", ()))
    # (_hooks_first: how the hooks' observer is called, which is what differs)
    return {k: _plain(getattr(obj, k)) for k in names if hasattr(obj, k) and k != "_hooks_first"}


def _apply(cs: CpuStates, m: KernelModel, o: tuple[Any, ...]) -> None:
    kind, *a = o
    if kind == "ctx":
        cs.set_ctx(a[0], a[1], a[2])
    elif kind == "release":
        cs.release_ctx(a[0], a[1])
    elif kind == "stall":
        cs.set_stalled(a[0], a[1], a[2])
    elif kind == "spin":
        cs.set_spinning(a[0], a[1])
    elif kind == "steal":
        cs.set_steal_frac(a[0], a[1])
    elif kind == "hard_dis":
        cs.set_hard_dis(a[0])
    elif kind == "busy":
        m.set_busy(a[0], a[1], a[2])
    elif kind == "publish":
        cs.publish(*a)
    elif kind == "unpublish":
        cs.unpublish(*a)
    elif kind == "irq":
        m.irq.deliver(a[0])
    elif kind == "stop_machine":
        if not m.hooks.rendezvous and not m.hooks.in_stop_machine(0):  # type: ignore[attr-defined]
            m.hooks.stop_machine(range(N))
    else:
        raise ValueError(kind)


def _picture(cs: CpuStates, kr: KernelRun, env: Environment) -> list[Any]:
    m = kr.model
    return [
        [_state(c) for c in cs.cpus],
        *(_fields(x) for x in (m, m.hard, m.soft, m.rcu, m.wq, m.nmi, m.hung, kr.irq)),
        sorted((e[0], e[1], e[2]) for e in env._heap),
    ]


def _run(ops: list[tuple[Any, ...]], kernel: str, dtl: str | None, cls: type[KernelModel]) -> list[Any]:
    sc = build_scenario(
        {
            "partition": {"vcpus": N, "memory_gib": 4},
            "workload": {"irq_rate_hz": 3.0},
            "migration": {"enabled": False},
            "kernel": KERNELS[kernel],
            "sim": {"max_time_s": 900, "mode": "exact"},
        }
    )
    streams = RngStreams(sc.sim.seed)
    env = Environment(0.0)
    cs = CpuStates(N, lambda: env.now)
    with _model(cls):
        kr = KernelRun(
            env,
            cs,
            sc.kernel,
            sc.script,
            streams["kernel/nmi"],
            irq_rate_hz=3.0,
            irq_rng=streams["kernel/irq"],
        )
    m = kr.model
    assert type(m) is cls
    if dtl is not None:
        m.enable_dtl(dtl)

    def run_to(t: float) -> None:
        while not m.dead and env.peek() <= t:
            env.step()
        env.now = max(env.now, t)

    t = 1.0
    run_to(t)
    pictures: list[Any] = []
    for o in ops:
        if o[0] == "wait":
            t += o[1]
            run_to(t)
        elif not m.dead:
            _apply(cs, m, o)
        pictures.append(_picture(cs, kr, env))
        # the invariant the transition path keeps for RCU's checks
        assert m.rcu.ticking_holdouts == m.rcu.holdouts - m.blocked
    run_to(t + 40.0)
    return [*pictures, kr.summary(), m.log.lines()]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(op, max_size=40),
    st.sampled_from(sorted(KERNELS)),
    st.sampled_from([None, None, "steal-aware", "annotate"]),
)
def test_the_inline_transition_path_is_the_hooks(
    ops: list[tuple[Any, ...]], kernel: str, dtl: str | None
) -> None:
    assert _run(ops, kernel, dtl, KernelModel) == _run(ops, kernel, dtl, Reference)


def test_a_long_stall_reports_alike() -> None:
    """A case where every detector reports (CPU 1 stalled 60 s, CPU 2 soft-masked 60 s with its
    interrupts): the two models agree, and the reports are there to agree on."""
    ops: list[tuple[Any, ...]] = [
        ("ctx", 2, Ctx.IRQS_SOFT_OFF, GUEST),
        ("stall", 1, True, GUEST),
        ("ctx", 3, Ctx.PREEMPT_OFF, "script#0"),
        *[("wait", 4.0)] * 15,
        ("stall", 1, False, GUEST),
        ("ctx", 2, Ctx.USER, GUEST),
        ("wait", 0.01),
    ]
    a = _run(ops, "default", None, KernelModel)
    assert a == _run(ops, "default", None, Reference)
    detectors = {e["detector"] for e in a[-2]["events"]}
    assert {"hardlockup", "softlockup", "rcu_stall", "workqueue_lockup"} <= detectors


def test_a_deferred_rcu_pass_runs_alike() -> None:
    """RCU's IPI pass falls while no CPU can schedule (deferred); the first CPU to schedule again,
    not a holdout, sends them (``RcuStall.on_qs``'s third step)."""
    ops: list[tuple[Any, ...]] = [
        ("ctx", 1, Ctx.PREEMPT_OFF, "script#0"),
        ("wait", 4.0),
        ("wait", 4.0),
        *[("ctx", c, Ctx.PREEMPT_OFF, "script#0") for c in (0, 2, 3)],
        ("wait", 4.0),
        ("release", 0, "script#0"),
        ("wait", 4.0),
    ]
    a = _run(ops, "default", None, KernelModel)
    assert a == _run(ops, "default", None, Reference)
    assert a[-3][4]["resched_ipis"] == 1  # (the last picture: RcuStall's fields)


class _Mutant(Reference):
    """The reference with one hook left out: the soft-lockup touch stamp is not materialised."""

    def _refresh(self, c: int, t: float, observer: bool = True) -> None:
        sok_was = self.sok[c]
        touch = self.soft.touch_ts[c]
        super()._refresh(c, t, observer)
        if sok_was and not self.sok[c]:
            self.soft.touch_ts[c] = touch


def test_the_comparison_sees_a_missing_hook() -> None:
    ops: list[tuple[Any, ...]] = [
        ("wait", 4.0),
        ("wait", 1.0),
        ("ctx", 1, Ctx.PREEMPT_OFF, GUEST),
        ("wait", 30.0),
    ]
    assert _run(ops, "default", None, KernelModel) == _run(ops, "default", None, Reference)
    assert _run(ops, "default", None, KernelModel) != _run(ops, "default", None, _Mutant)


def test_eps_is_the_models() -> None:
    """(the reference's grid arithmetic is the model's: ``Grid`` with ``EPS``)"""
    assert EPS == 1e-9

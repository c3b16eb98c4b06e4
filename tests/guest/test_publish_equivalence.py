"""The fluid guest's combined writes (``CpuStates.publish`` / ``unpublish``) are the single writes.

A published episode moves a vCPU's steal share, context, spin and stall at once; the combined
writes replace four writer calls (docs/performance.md, "Round 5").  They must tell the observers
exactly what the four single writes would, in the same order, each after the same intermediate
state (the detectors react to a vCPU entering its context before it stalls), and re-read the state
after each notification (an observer may write it: the external-interrupt arrivals hard-mask a
soft-masked CPU).  Checked on random states reached by random single writes, at two levels:

* what an observer sees: the sequence of notifications, each with the whole vCPU state then, for
  an observer of every change and one not told of steal-only changes, plus one that writes back;
* the kernel model: two identical kernels (every detector, the interrupt arrivals), one given the
  combined write and one the single writes, have the same state after it (every detector's fields,
  the event heap) and the same reports and log after running on for 40 s.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lpmsim.config.loader import build_scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import GUEST, CpuState, CpuStates, Ctx
from lpmsim.kernel.model import KernelRun
from lpmsim.kernel.timing import Alarm

N = 4
CTXS = list(Ctx)
OWNERS = [GUEST, GUEST, "script#0", "rtas"]
STALLERS = [GUEST, GUEST, "suspend"]
LOCKS = [None, None, "zone->lock", "rq->lock"]

op = st.one_of(
    st.tuples(st.just("ctx"), st.integers(0, N - 1), st.sampled_from(CTXS), st.sampled_from(OWNERS)),
    st.tuples(st.just("release"), st.integers(0, N - 1), st.sampled_from(OWNERS[2:])),
    st.tuples(st.just("stall"), st.integers(0, N - 1), st.booleans(), st.sampled_from(STALLERS)),
    st.tuples(st.just("spin"), st.integers(0, N - 1), st.sampled_from(LOCKS)),
    st.tuples(st.just("steal"), st.integers(0, N - 1), st.sampled_from([0.0, 0.25, 1.0])),
    st.tuples(st.just("hard_dis"), st.integers(0, N - 1)),
    st.tuples(st.just("wait"), st.sampled_from([0.001, 0.3, 1.7, 4.0, 12.0])),
)
final = st.one_of(
    st.tuples(
        st.just("publish"),
        st.integers(0, N - 1),
        st.sampled_from([0.0, 0.4, 1.0, 1.5]),
        st.sampled_from(CTXS),
        st.sampled_from(LOCKS),
        st.booleans(),
    ),
    st.tuples(st.just("unpublish"), st.integers(0, N - 1), st.sampled_from(CTXS)),
)


def _apply(cs: CpuStates, o: tuple[Any, ...]) -> None:
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
    else:
        raise ValueError(kind)


def _final(cs: CpuStates, o: tuple[Any, ...], combined: bool, t: float | None = None) -> None:
    """The combined write, or the single writes it stands for (in ``FluidGuest``'s order).  ``t``:
    the combined write is given the time (as the fluid guest gives it), else it reads the clock."""
    if o[0] == "publish":
        _, cpu, steal, ctx, spin, stalled = o
        if combined and t is not None:
            cs.publish(cpu, steal, ctx, spin, stalled, t)
        elif combined:
            cs.publish(cpu, steal, ctx, spin, stalled)
        else:
            cs.set_steal_frac(cpu, steal)
            cs.set_ctx(cpu, ctx)
            cs.set_spinning(cpu, spin)
            cs.set_stalled(cpu, stalled)
    else:
        _, cpu, ctx = o
        if combined and t is not None:
            cs.unpublish(cpu, ctx, t)
        elif combined:
            cs.unpublish(cpu, ctx)
        else:
            cs.set_steal_frac(cpu, 0.0)
            cs.set_stalled(cpu, False)
            cs.set_spinning(cpu, None)
            cs.set_ctx(cpu, ctx)


def _state(c: CpuState) -> tuple[Any, ...]:
    return (
        c.ctx,
        c.stalled,
        c.spinning,
        c.task,
        c.last_qs,
        c.last_switch,
        c.steal_frac,
        c.hard_dis,
        c.guest_ctx,
        c.guest_task,
        sorted(c.stall_by),
        list(c.holds.items()),
        list(c.held_task.items()),
    )


# -- what the observers are told -----------------------------------------------------------------
def _observed(
    ops: list[tuple[Any, ...]], last: tuple[Any, ...], combined: bool, given: float | None = None
) -> list[Any]:
    """``given``: the last write is given the time now plus ``given`` (None: it reads the clock)."""
    now = [0.0]
    cs = CpuStates(N, lambda: now[0])
    seen: list[Any] = []

    def every(c: int, t: float) -> None:
        seen.append(("every", c, t, _state(cs.cpus[c])))

    def not_steal(c: int, t: float) -> None:
        seen.append(("not-steal", c, t, _state(cs.cpus[c])))
        # writes back, as the interrupt arrivals do: a soft-masked running CPU gets hard-masked
        if cs.cpus[c].ctx == Ctx.IRQS_SOFT_OFF and not cs.cpus[c].stalled:
            cs.set_hard_dis(c)

    cs.subscribe(every, steal=True)
    cs.subscribe(not_steal, steal=False)
    for o in ops:
        if o[0] == "wait":
            now[0] += o[1]
        else:
            _apply(cs, o)
    seen.append("final")
    now[0] += 0.5
    _final(cs, last, combined, None if given is None else now[0] + given)
    return [*seen, [_state(c) for c in cs.cpus]]


@settings(max_examples=400, deadline=None)
@given(st.lists(op, max_size=25), final)
def test_observers_see_the_single_writes(ops: list[tuple[Any, ...]], last: tuple[Any, ...]) -> None:
    assert _observed(ops, last, True) == _observed(ops, last, False)


# -- the kernel model -----------------------------------------------------------------------------
SCENARIO: dict[str, Any] = {
    "partition": {"vcpus": N, "memory_gib": 4},
    "workload": {"irq_rate_hz": 3.0},
    "migration": {"enabled": False},
    "sim": {"max_time_s": 200, "mode": "exact"},
}


def _plain(v: Any, depth: int = 0) -> Any:
    """A comparable picture of a detector's field (numbers, flags, sets, lists, alarms' times)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, Alarm):
        return ("alarm", v.at)
    if depth < 3 and isinstance(v, (list, tuple)):
        return [_plain(x, depth + 1) for x in v]
    if depth < 3 and isinstance(v, (set, frozenset)):
        return sorted(v)
    if depth < 3 and isinstance(v, dict):
        return [(k, _plain(x, depth + 1)) for k, x in v.items()]
    return type(v).__name__  # another object (the model, the environment, a callable)


def _fields(obj: Any) -> dict[str, Any]:
    names = list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        names += list(getattr(cls, "__slots__", ()))
    return {k: _plain(getattr(obj, k)) for k in names if hasattr(obj, k)}


def _kernel(
    ops: list[tuple[Any, ...]], last: tuple[Any, ...], combined: bool, timed: bool = False
) -> list[Any]:
    """``timed``: the last write is given the time now (``env.now``), as the fluid guest gives it."""
    sc = build_scenario(SCENARIO)
    streams = RngStreams(sc.sim.seed)
    env = Environment(0.0)
    cs = CpuStates(N, lambda: env.now)
    kr = KernelRun(
        env, cs, sc.kernel, sc.script, streams["kernel/nmi"], irq_rate_hz=3.0, irq_rng=streams["kernel/irq"]
    )
    m = kr.model

    def run_to(t: float) -> None:
        while not m.dead and env.peek() <= t:
            env.step()
        env.now = max(env.now, t)

    t = 1.0
    run_to(t)
    for o in ops:
        if o[0] == "wait":
            t += o[1]
            run_to(t)
        elif not m.dead:
            _apply(cs, o)
    if not m.dead:
        _final(cs, last, combined, env.now if timed else None)
    picture: list[Any] = [
        [_state(c) for c in cs.cpus],
        *(_fields(x) for x in (m, m.hard, m.soft, m.rcu, m.wq, m.nmi, m.hung, kr.irq)),
        sorted((e[0], e[1], e[2]) for e in env._heap),
    ]
    run_to(t + 40.0)
    return [*picture, kr.summary(), m.log.lines()]


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=25), final)
def test_the_kernel_model_reacts_as_to_the_single_writes(
    ops: list[tuple[Any, ...]], last: tuple[Any, ...]
) -> None:
    assert _kernel(ops, last, True) == _kernel(ops, last, False)


def test_the_picture_sees_a_difference() -> None:
    """The comparison can fail: one write fewer changes the kernel's picture."""
    ops: list[tuple[Any, ...]] = [("ctx", 1, Ctx.IRQS_SOFT_OFF, GUEST), ("wait", 0.3)]
    a = _kernel(ops, ("publish", 1, 0.0, Ctx.IRQS_SOFT_OFF, None, True), True)
    b = _kernel(ops, ("publish", 1, 0.0, Ctx.IRQS_SOFT_OFF, None, False), True)
    assert a != b


# -- the time from the caller ---------------------------------------------------------------------
# ``publish`` / ``unpublish`` take the time now from a caller that knows it (the fluid guest passes
# ``env.now``) instead of calling ``now()`` (docs/performance.md, "Round 7"): given ``now()``, they
# tell and leave the same; given another time, the observers are told that time.
@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=25), final)
def test_observers_are_told_the_same_with_the_callers_time(
    ops: list[tuple[Any, ...]], last: tuple[Any, ...]
) -> None:
    assert _observed(ops, last, True, 0.0) == _observed(ops, last, True)


def test_the_time_passed_is_the_time_told() -> None:
    """The comparison can fail: a write given another time tells the observers that time."""
    ops: list[tuple[Any, ...]] = [("stall", 1, True, GUEST), ("wait", 1.7)]
    for last in [("publish", 2, 1.0, Ctx.USER, None, True), ("unpublish", 1, Ctx.KERNEL)]:
        assert _observed(ops, last, True, 0.25) != _observed(ops, last, True)


@settings(max_examples=100, deadline=None)
@given(st.lists(op, max_size=25), final)
def test_the_kernel_model_reacts_the_same_with_the_callers_time(
    ops: list[tuple[Any, ...]], last: tuple[Any, ...]
) -> None:
    assert _kernel(ops, last, True, timed=True) == _kernel(ops, last, True)

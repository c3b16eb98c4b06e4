"""The exact guest's writes with the time from the caller (``CpuStates.set_ctx`` / ``set_stalled``
with ``t``) are the same writes without it, as the workload (docs/performance.md, "Round 7: the exact mode").

On random states reached by random single writes (holds by other owners, stalls by two owners,
spins, hard-disables), the writer and the single write it stands for give the same vCPU state
and tell the observers the same things (each notification with the whole vCPU state then), with
observers called straight from the writer and, for a subclass watching ``_changed``, through it.
Also: the interrupt arrivals' gaps drawn in blocks are numpy's single draws.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import GUEST, CpuState, CpuStates, Ctx
from lpmsim.kernel.irq_arrivals import BLOCK, _gaps

N = 2
CTXS = list(Ctx)

op = st.one_of(
    st.tuples(
        st.just("ctx"), st.integers(0, N - 1), st.sampled_from(CTXS), st.sampled_from([GUEST, GUEST, "rtas"])
    ),
    st.tuples(st.just("release"), st.integers(0, N - 1)),
    st.tuples(st.just("stall"), st.integers(0, N - 1), st.booleans(), st.sampled_from([GUEST, "suspend"])),
    st.tuples(st.just("spin"), st.integers(0, N - 1), st.sampled_from([None, "zone->lock"])),
    st.tuples(st.just("hard_dis"), st.integers(0, N - 1)),
    st.tuples(st.just("tick"), st.sampled_from([0.5, 1.0, 3.0])),
)
final = st.one_of(
    st.tuples(st.just("enter"), st.integers(0, N - 1), st.sampled_from(CTXS)),
    st.tuples(st.just("stall_guest"), st.integers(0, N - 1), st.booleans()),
)


def _state(c: CpuState) -> tuple[Any, ...]:
    return (
        c.ctx,
        c.guest_ctx,
        c.stalled,
        sorted(c.stall_by),
        c.spinning,
        c.hard_dis,
        c.last_qs,
        sorted(c.holds.items()),
    )


class _Watched(CpuStates):
    """A subclass watching ``_changed``: the writers then go through it."""

    def _changed(self, cpu: int) -> None:
        super()._changed(cpu)


def _run(ops: list[tuple[Any, ...]], last: tuple[Any, ...], combined: bool, watched: bool) -> list[Any]:
    now = [1.0]
    cs = (_Watched if watched else CpuStates)(N, lambda: now[0])
    seen: list[Any] = []
    cs.subscribe(lambda c, t: seen.append(("a", c, t, _state(cs.cpus[c]))))
    cs.subscribe(lambda c, t: seen.append(("b", c, t)), steal=False)
    for o in ops:
        kind, *a = o
        if kind == "ctx":
            cs.set_ctx(a[0], a[1], a[2])
        elif kind == "release":
            cs.release_ctx(a[0], "rtas")
        elif kind == "stall":
            cs.set_stalled(a[0], a[1], a[2])
        elif kind == "spin":
            cs.set_spinning(a[0], a[1])
        elif kind == "hard_dis":
            cs.set_hard_dis(a[0])
        else:
            now[0] += a[0]
    seen.clear()
    kind, cpu, x = last
    if kind == "enter":
        if combined:
            cs.set_ctx(cpu, x, GUEST, now[0])
        else:
            cs.set_ctx(cpu, x)
    elif combined:
        cs.set_stalled(cpu, x, GUEST, now[0])
    else:
        cs.set_stalled(cpu, x)
    return [[_state(c) for c in cs.cpus], seen]


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=25), final, st.booleans())
def test_the_exact_writers_are_the_single_writes(
    ops: list[tuple[Any, ...]], last: tuple[Any, ...], watched: bool
) -> None:
    assert _run(ops, last, True, watched) == _run(ops, last, False, watched)


SOFT, HARD, USER, KERNEL = Ctx.IRQS_SOFT_OFF, Ctx.IRQS_HARD_OFF, Ctx.USER, Ctx.KERNEL
CASES: list[tuple[list[tuple[Any, ...]], tuple[Any, ...]]] = [
    ([("ctx", 0, SOFT, GUEST), ("hard_dis", 0)], ("enter", 0, KERNEL)),  # interrupts on again
    ([("ctx", 0, SOFT, GUEST), ("hard_dis", 0)], ("enter", 0, HARD)),  # still off: kept
    ([("ctx", 0, SOFT, "rtas")], ("enter", 0, USER)),  # held: the workload's kept for later
    ([("ctx", 0, KERNEL, GUEST), ("tick", 1.0)], ("enter", 0, USER)),  # a quiescent state
    ([("stall", 0, True, "suspend"), ("tick", 1.0)], ("enter", 0, USER)),  # stalled: none
    ([("stall", 0, True, "suspend")], ("stall_guest", 0, True)),  # already stalled
    ([("stall", 0, True, "suspend"), ("stall", 0, True, GUEST)], ("stall_guest", 0, False)),
    ([("stall", 0, True, GUEST)], ("stall_guest", 0, False)),
    ([], ("stall_guest", 0, False)),  # not held: nothing
]


def test_the_exact_writers_on_chosen_states() -> None:
    for ops, last in CASES:
        for watched in (False, True):
            assert _run(ops, last, True, watched) == _run(ops, last, False, watched), (ops, last)


def test_the_writers_tell_the_observers_of_a_change_only() -> None:
    got = _run([], ("enter", 0, Ctx.KERNEL), True, False)
    assert [s[:3] for s in got[1]] == [("a", 0, 1.0), ("b", 0, 1.0)]
    assert _run([("ctx", 0, Ctx.KERNEL, GUEST)], ("enter", 0, Ctx.KERNEL), True, False)[1] == []
    assert _run([("stall", 0, True, "suspend")], ("stall_guest", 0, True), True, False)[1] == []


def test_irq_gaps_in_blocks_are_the_single_draws() -> None:
    for scale in (1.0 / 500, 1.0 / 3.0):
        gap = _gaps(RngStreams(11)["kernel/irq"], scale)
        one = RngStreams(11)["kernel/irq"]
        n = 2 * BLOCK + 7  # across block boundaries
        assert [gap() for _ in range(n)] == [float(one.exponential(scale)) for _ in range(n)]
        assert isinstance(gap(), float)

"""``Environment.fire_inline`` (issue 12, round 6): running an event kept out of the heap in place.

``ExactLink`` keeps its completion checks in a heap of its own and only the earliest in the event
heap (``call_in_place``); a superseded check does nothing when it fires, and those that would be
the next events are run inline by the one before (``fire_inline``).  Against the same events
pushed and popped one by one: the same things at the same times in the same order, the same
number of events, the same clock at the end, under a stop time and a model that dies.
"""

from __future__ import annotations

import functools
from collections.abc import Generator
from heapq import heappop, heappush
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lpmsim.engine.core import Environment, Event

plans = st.lists(
    st.tuples(st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0, 3.5]), st.booleans(), st.booleans()),
    max_size=40,
)


class _Model:
    def __init__(self) -> None:
        self.dead = False


def _fired(
    plan: list[tuple[float, bool, bool]], inline: bool, stop_at: float, die_at: int
) -> tuple[list[tuple[float, int]], int, float]:
    """A driver schedules a call at ``now + delay`` at each of its steps: kept in a private heap
    (pushed with ``call_in_place`` when the earliest of it) when marked so, else ``call_at``.  A
    kept call marked "noop" only notes itself; with ``inline`` the kept no-ops that would be the
    next events are run by the call before them (``fire_inline``)."""
    env = Environment()
    model = _Model()
    fired: list[tuple[float, int]] = []
    kept: list[tuple[float, int, int]] = []
    noop: set[int] = set()
    in_heap: set[int] = set()

    def note(k: int) -> None:
        fired.append((env.now, k))
        if len(fired) == die_at:
            model.dead = True

    def push_first() -> None:
        if kept and kept[0][1] not in in_heap:
            t, order, _k = kept[0]
            in_heap.add(order)
            env.call_in_place(t, order, fire_kept)

    def fire_kept() -> None:
        _t, order, k = heappop(kept)
        in_heap.remove(order)
        note(k)
        if inline:
            while kept and kept[0][2] in noop and kept[0][1] not in in_heap:
                t, nxt, k2 = kept[0]
                if not env.fire_inline(t, nxt):
                    break
                heappop(kept)
                note(k2)
        push_first()

    def driver() -> Generator[Event | float, Any, None]:
        for k, (delay, keep, is_noop) in enumerate(plan):
            t = env.now + delay
            if keep:
                if is_noop:
                    noop.add(k)
                heappush(kept, (env.now + (t - env.now), env.next_order(), k))
                push_first()
            else:
                env.call_at(t, functools.partial(note, k))
            yield 0.25

    env.process(driver())
    env.run_bounded([stop_at], model)
    return fired, env.events_processed, env.now


@settings(max_examples=200, deadline=None)
@given(plans, st.sampled_from([0.5, 1.0, 3.0, 100.0]), st.integers(0, 40))
def test_fire_inline_is_a_push_and_a_pop(
    plan: list[tuple[float, bool, bool]], stop_at: float, die_at: int
) -> None:
    assert _fired(plan, True, stop_at, die_at) == _fired(plan, False, stop_at, die_at)


def test_fire_inline_says_no_behind_an_earlier_or_equal_key_and_outside_a_run() -> None:
    env = Environment()
    assert not env.fire_inline(1.0, 10**9)  # not inside run_bounded
    got: list[bool] = []
    env.call_at(2.0, lambda: None)  # key (2.0, NORMAL, 1)
    later = env.next_order()  # an order taken after that call's

    def first() -> None:
        got.append(env.fire_inline(2.0, later))  # the call at 2.0 was scheduled first: it goes first
        got.append(env.fire_inline(0.5, later))  # in the past
        got.append(env.fire_inline(2.0, 0))  # an earlier order at the same time: would go first
        got.append(env.now == 2.0)

    env.call_at(1.0, first)
    env.run_bounded([10.0], _Model())
    assert got == [False, False, True, True]
    assert env.events_processed == 3  # the two calls and the one run inline

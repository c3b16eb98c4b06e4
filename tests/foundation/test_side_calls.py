"""The event core's round-7 shortcuts (issue 12): ``SideCalls`` and ``run_bounded``'s inline resume.

* ``Environment.side.call_at`` keeps a call out of the event heap until it is the earliest of the
  kept ones (the kernel model's alarms and RCU's rescheduling pass go there): against
  ``Environment.call_at``, the same calls at the same times in the same order, the same number of
  events, the same clock at the end, under a stop time and a model that dies, with calls
  planned from inside calls and at equal times.
* ``run_bounded`` resumes a process's wake-up itself and pushes the next wake-up together with
  the next pop (``heappushpop``): against ``step()`` one event at a time (the plain callbacks),
  the same.
"""

from __future__ import annotations

import functools
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpmsim.engine.core import Environment, Event, SimulationError

DELAYS = [0.0, 0.25, 0.5, 1.0, 1.0, 2.0, 3.5]

# a plan: per step of a driver process, (delay of a call, kept aside?, the call plans another?)
plans = st.lists(
    st.tuples(st.sampled_from(DELAYS), st.booleans(), st.sampled_from([None, *DELAYS])),
    max_size=30,
)
# the processes' own delays: floats yielded, or Timeouts
waits = st.lists(st.tuples(st.sampled_from(DELAYS), st.booleans()), min_size=1, max_size=12)


class _Model:
    def __init__(self) -> None:
        self.dead = False


def _trace(
    plan: list[tuple[float, bool, float | None]],
    procs: list[list[tuple[float, bool]]],
    side: bool,
    stepwise: bool,
    stop_at: float,
    die_at: int,
) -> tuple[list[tuple[float, str]], int, float, list[tuple[float, int, int]]]:
    """Run a driver that plans calls (kept aside when ``side`` and the plan says so, else with
    ``call_at``) and a few processes that wait; with ``stepwise``, ``step()`` until the stop
    time or the death instead of ``run_bounded``.  Returns what fired when, the event count, the
    clock, and the heap keys left (the kept calls included)."""
    env = Environment()
    model = _Model()
    fired: list[tuple[float, str]] = []

    def note(name: str) -> None:
        fired.append((env.now, name))
        if len(fired) == die_at:
            model.dead = True

    def call(name: str, again: float | None, keep: bool) -> None:
        note(name)
        if again is not None:
            plan_call(f"{name}+", env.now + again, keep, None)

    def plan_call(name: str, t: float, keep: bool, again: float | None) -> None:
        fn = functools.partial(call, name, again, keep)
        if keep and side:
            env.side.call_at(t, fn)
        else:
            env.call_at(t, fn)

    def driver() -> Generator[Event | float, Any, None]:
        for k, (delay, keep, again) in enumerate(plan):
            plan_call(f"c{k}", env.now + delay, keep, again)
            yield 0.25

    def waiter(i: int, ws: list[tuple[float, bool]]) -> Generator[Event | float, Any, None]:
        for j, (d, as_timeout) in enumerate(ws):
            if as_timeout:
                yield env.timeout(d)
            else:
                yield d
            note(f"p{i}.{j}")

    env.process(driver())
    for i, ws in enumerate(procs):
        env.process(waiter(i, ws))
    if stepwise:
        while env._heap and not model.dead and env.peek() <= stop_at:
            env.step()
    else:
        env.run_bounded([stop_at], model)
    keys = sorted((e[0], e[1], e[2]) for e in env._heap)
    kept = sorted((t, 1, order) for t, order, _fn in env.side._kept)
    # a kept call's proxy entry in the heap stands for that call: counted once
    left = sorted(set(keys) | set(kept))
    return fired, env.events_processed, env.now, left


@settings(max_examples=200, deadline=None)
@given(plans, st.lists(waits, max_size=4), st.sampled_from([0.5, 1.0, 3.0, 100.0]), st.integers(0, 60))
def test_kept_calls_fire_as_pushed_ones(
    plan: list[tuple[float, bool, float | None]],
    procs: list[list[tuple[float, bool]]],
    stop_at: float,
    die_at: int,
) -> None:
    plain = _trace(plan, procs, False, False, stop_at, die_at)
    assert _trace(plan, procs, True, False, stop_at, die_at) == plain
    # run_bounded (the inline resume, the merged push and pop) against step() one event at a time
    assert _trace(plan, procs, True, True, stop_at, die_at) == plain
    assert _trace(plan, procs, False, True, stop_at, die_at) == plain


def test_side_calls_at_equal_times_keep_their_order_among_other_events() -> None:
    env = Environment()
    fired: list[str] = []
    env.side.call_at(1.0, lambda: fired.append("kept-a"))
    env.call_at(1.0, lambda: fired.append("plain-b"))
    env.side.call_at(1.0, lambda: fired.append("kept-c"))
    env.side.call_at(0.5, lambda: fired.append("kept-0"))  # earlier: gets its own proxy
    env.call_at(1.0, lambda: fired.append("plain-d"))
    assert len(env.side) == 3
    env.run_bounded([10.0], _Model())
    assert fired == ["kept-0", "kept-a", "plain-b", "kept-c", "plain-d"]
    assert env.events_processed == 5
    assert len(env.side) == 0 and not env._heap


def test_side_call_in_the_past_is_refused() -> None:
    env = Environment(5.0)
    with pytest.raises(SimulationError, match="in the past"):
        env.side.call_at(4.0, lambda: None)


@pytest.mark.parametrize("dies", [True, False])
def test_a_death_or_the_stop_time_leaves_the_next_wake_up_in_the_heap(dies: bool) -> None:
    env = Environment()
    model = _Model()

    def proc() -> Generator[Event | float, Any, None]:
        yield 1.0
        model.dead = dies
        yield 2.0

    env.process(proc())
    env.run_bounded([2.5], model)
    assert env.now == 1.0
    assert [e[0] for e in env._heap] == [3.0]  # the wake-up planned last, not lost
    model.dead = False
    env.run_bounded([10.0], model)
    assert env.now == 3.0 and not env._heap

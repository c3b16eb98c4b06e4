"""The event core's contract, checked against a plain reference scheduler.

The exact mode's speed work (direct heap pushes for timeouts and calls, one resume callback per
process) must not change which events exist or the order they fire in: a run's ``sim.events``
and every result depend on it.  The reference below is the obvious implementation of the
documented rule — fire by (time, priority, scheduling order) — written without any shortcut.
"""

from __future__ import annotations

import functools
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lpmsim.engine.core import URGENT, Environment, Event, SimulationError


class _Reference:
    """Fire by (time, priority, order of scheduling), one at a time, from a sorted list."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pending: list[tuple[float, int, int, int]] = []
        self.order = 0

    def schedule(self, delay: float, priority: int, tag: int) -> None:
        self.order += 1
        self.pending.append((self.now + delay, priority, self.order, tag))

    def pop(self) -> tuple[float, int]:
        self.pending.sort()
        t, _p, _o, tag = self.pending.pop(0)
        self.now = t
        return t, tag


# A program: action k is (delay, priority, number of further actions it schedules when it fires).
# Action 0 is scheduled first; the others are scheduled, in index order, by the actions that fire.
delays = st.sampled_from([0.0, 0.0, 0.5, 1.0, 1.0, 2.5, 1e-9, 3.0])
programs = st.lists(st.tuples(delays, st.sampled_from([0, 1]), st.integers(0, 3)), min_size=1, max_size=60)


def _reference_order(program: list[tuple[float, int, int]]) -> list[tuple[float, int]]:
    ref = _Reference()
    nxt = 1
    ref.schedule(program[0][0], program[0][1], 0)
    out: list[tuple[float, int]] = []
    while ref.pending:
        t, k = ref.pop()
        out.append((t, k))
        for _ in range(program[k][2]):
            if nxt < len(program):
                delay = program[nxt][0]
                if nxt % 3 == 1:  # call_at(now + delay) schedules at now + ((now + delay) - now)
                    delay = (ref.now + delay) - ref.now
                ref.schedule(delay, program[nxt][1], nxt)
                nxt += 1
    return out


@settings(max_examples=150, deadline=None)
@given(programs)
def test_firing_order_matches_the_reference_scheduler(program: list[tuple[float, int, int]]) -> None:
    """Timeouts, calls and plain events, scheduled from inside callbacks, fire in reference order."""
    env = Environment()
    fired: list[tuple[float, int]] = []
    nxt = [1]

    def spawn(k: int) -> None:
        delay, prio, kids = program[k]

        def fire(_ev: Event | None = None) -> None:
            fired.append((env.now, k))
            for _ in range(kids):
                if nxt[0] < len(program):
                    j = nxt[0]
                    nxt[0] += 1
                    spawn(j)

        kind = k % 3  # each way of scheduling in turn
        if kind == 0:
            env.timeout(delay, priority=prio).add_callback(fire)
        elif kind == 1:
            env.call_at(env.now + delay, fire, priority=prio)
        else:
            ev = env.event()
            ev.add_callback(fire)
            ev.succeed(delay=delay, priority=prio)

    spawn(0)
    env.run()
    expected = _reference_order(program)
    assert fired == expected
    assert env.events_processed == len(expected)


def test_process_counts_its_start_its_waits_and_its_end() -> None:
    """``events_processed`` (the summary's ``sim.events``) counts the start event of a process,
    every timeout it waits for and the event of its return."""
    env = Environment()

    def proc() -> Generator[Event, Any, str]:
        yield env.timeout(1.0)
        yield env.timeout(2.0)
        return "done"

    p = env.process(proc())
    env.run()
    assert p.processed and p.value == "done"
    assert env.events_processed == 4
    assert env.now == 3.0


def test_waiting_on_an_event_already_processed_resumes_at_once_with_its_value() -> None:
    env = Environment()
    ev = env.event()
    ev.succeed("v", delay=1.0)
    got: list[tuple[float, Any]] = []

    def late() -> Generator[Event, Any, None]:
        yield env.timeout(2.0)
        got.append((env.now, (yield ev)))

    env.process(late())
    env.run()
    assert got == [(2.0, "v")]


def test_an_urgent_resume_overtakes_a_normal_event_at_the_same_time() -> None:
    env = Environment()
    seen: list[str] = []
    done = env.event()
    done.succeed()

    def proc() -> Generator[Event, Any, None]:
        yield env.timeout(1.0)
        env.call_at(env.now, lambda: seen.append("normal call"))
        yield done  # processed long ago: resumed by an URGENT event at the same time
        seen.append("resumed")

    env.process(proc())
    env.run()
    assert seen == ["resumed", "normal call"]
    assert URGENT == 0


def test_call_at_fires_at_now_plus_the_delay_it_implies() -> None:
    """``call_at(t)`` is ``succeed(delay=t - now)``: the heap time is ``now + (t - now)``."""
    env = Environment(0.1)
    t = 0.3  # 0.1 + (0.3 - 0.1) != 0.3 in binary floating point
    seen: list[float] = []
    env.call_at(t, lambda: seen.append(env.now))
    env.run()
    assert seen == [0.1 + (t - 0.1)]


@pytest.mark.parametrize("bad", [-1e-12, float("nan")])
def test_timeout_rejects_negative_and_nan_delays(bad: float) -> None:
    env = Environment()
    with pytest.raises(SimulationError):
        env.timeout(bad)
    assert env.events_processed == 0 and env.peek() == float("inf")


def test_event_rules() -> None:
    env = Environment()
    ev = env.event()
    ev.succeed()
    with pytest.raises(SimulationError):
        ev.succeed()
    env.run()
    with pytest.raises(SimulationError):
        ev.add_callback(lambda _e: None)
    t = env.timeout(0.0)
    with pytest.raises(SimulationError):
        t.succeed()


def test_run_until_an_event_stops_right_after_it() -> None:
    env = Environment()
    stop = env.timeout(2.0)
    later: list[float] = []
    env.call_at(5.0, lambda: later.append(env.now))
    env.run(until=stop)
    assert env.now == 2.0 and not later
    env.run(until=10.0)
    assert later == [5.0] and env.now == 10.0


# -- yielded float delays and run_bounded (issue 12, round 3) ------------------------------------------

step_lists = st.lists(
    st.lists(st.sampled_from([0.0, 1e-9, 0.25, 0.5, 1.0, 1.0, 0.1, 0.2]), min_size=1, max_size=8),
    min_size=1,
    max_size=8,
)


def _trace(waits: list[list[float]], as_float: bool) -> tuple[list[tuple[float, int, int]], int]:
    """Processes that wait ``waits[i]`` in turn, each wait as a ``Timeout`` or as a float, next to
    a call and a plain event per process: the order things happen in and the event count."""
    env = Environment()
    seen: list[tuple[float, int, int]] = []

    def seen_call(i: int, j: int) -> None:
        seen.append((env.now, -i - 1, j))

    def proc(i: int, ws: list[float]) -> Generator[Event | float, Any, None]:
        for j, w in enumerate(ws):
            env.call_at(env.now + w, functools.partial(seen_call, i, j))
            yield w if as_float else env.timeout(w)
            seen.append((env.now, i, j))

    for i, ws in enumerate(waits):
        env.process(proc(i, ws))
    env.run()
    return seen, env.events_processed


@settings(max_examples=100, deadline=None)
@given(step_lists)
def test_a_yielded_float_is_a_timeout(waits: list[list[float]]) -> None:
    """``yield d`` resumes exactly where ``yield env.timeout(d)`` does: same times, same order
    against everything else scheduled, same number of events."""
    assert _trace(waits, as_float=True) == _trace(waits, as_float=False)


@pytest.mark.parametrize("bad", [-1e-12, float("nan")])
def test_a_yielded_negative_or_nan_float_is_an_error(bad: float) -> None:
    env = Environment()

    def proc() -> Generator[Event | float, Any, None]:
        yield bad

    env.process(proc())
    with pytest.raises(SimulationError):
        env.run()


def _tick(env: Environment, ticks: list[float]) -> None:
    ticks.append(env.now)


class _Model:
    def __init__(self) -> None:
        self.dead = False


@settings(max_examples=100, deadline=None)
@given(programs, st.floats(0.0, 6.0), st.integers(0, 20))
def test_run_bounded_is_the_peek_step_loop(
    program: list[tuple[float, int, int]], stop_at: float, die_at: int
) -> None:
    """``run_bounded`` processes the same events as ``while not dead and peek() <= stop: step()``,
    reading ``dead`` and the stop time before every event (a callback may change both)."""

    def build(env: Environment, model: _Model, stop: list[float], fired: list[tuple[float, int]]) -> None:
        nxt = [1]

        def spawn(k: int) -> None:
            delay, prio, kids = program[k]

            def fire() -> None:
                fired.append((env.now, k))
                if len(fired) == die_at:
                    model.dead = True
                if k == 1:
                    stop[0] += 1.0  # the stop time moves, as the runner's does
                for _ in range(kids):
                    if nxt[0] < len(program):
                        j = nxt[0]
                        nxt[0] += 1
                        spawn(j)

            env.call_at(env.now + delay, fire, priority=prio)

        spawn(0)

    runs = []
    for bounded in (True, False):
        env, model, stop = Environment(), _Model(), [stop_at]
        fired: list[tuple[float, int]] = []
        build(env, model, stop, fired)
        ticks: list[float] = []
        if bounded:
            env.run_bounded(stop, model, functools.partial(_tick, env, ticks), every=3)
        else:
            n = 0
            while not model.dead and env.peek() <= stop[0]:
                env.step()
                n += 1
                if n % 3 == 0:
                    _tick(env, ticks)
        runs.append((fired, env.events_processed, env.now, ticks, stop[0]))
    assert runs[0] == runs[1]


# Batched calls (``Environment.call_at_batched``): a program whose calls land on few distinct
# times, some of them batched, against the same program with one ``call_at`` each.
few_delays = st.sampled_from([0.0, 0.5, 1.0, 1.0, 1.0, 2.0])
batch_programs = st.lists(
    st.tuples(
        few_delays, st.sampled_from([0, 1, 1, 1]), st.integers(0, 3), st.sampled_from([True, True, False])
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=400, deadline=None)
# a plain call between two batched ones at one time; the stop time moved, the run dead, mid-batch
@example([(0.0, 1, 3, False), (1.0, 1, 0, True), (1.0, 1, 0, False), (1.0, 1, 0, True)], 6.0, 0, "bounded")
@example([(0.0, 1, 3, False), (1.0, 1, 0, True), (1.0, 1, 0, True), (1.0, 1, 0, True)], 6.0, 0, "bounded")
@example([(0.0, 1, 3, False), (1.0, 1, 0, True), (1.0, 1, 0, True), (1.0, 1, 0, True)], 6.0, 2, "bounded")
@given(
    batch_programs,
    st.floats(0.0, 6.0),
    st.integers(0, 12),
    st.sampled_from(["bounded", "bounded", "step", "run"]),
)
def test_batched_calls_fire_as_plain_calls(
    program: list[tuple[float, int, int, bool]], stop_at: float, die_at: int, loop: str
) -> None:
    """The same firings in the same order, the same ``events_processed``, the same progress ticks,
    with ``run_bounded`` (a callback may stop it: dead, or the stop time moved), ``step`` and
    ``run``; a batched call may be added while its batch runs, and URGENT events at the same time
    overtake the rest of a batch, as they overtake the later calls."""

    def build(
        env: Environment, model: _Model, stop: list[float], fired: list[tuple[float, int]], batched: bool
    ) -> None:
        nxt = [1]
        batches: dict[float, Any] = {}

        def spawn(k: int) -> None:
            delay, prio, kids, in_batch = program[k]

            def fire() -> None:
                fired.append((env.now, k))
                if len(fired) == die_at:
                    model.dead = True
                if k == 1:
                    stop[0] += 1.0
                elif k == 2:
                    stop[0] = min(stop[0], env.now - 0.125)  # the stop time moves before now
                for _ in range(kids):
                    if nxt[0] < len(program):
                        j = nxt[0]
                        nxt[0] += 1
                        spawn(j)

            if batched and in_batch and prio == 1:
                env.call_at_batched(env.now + delay, fire, batches)
            else:
                env.call_at(env.now + delay, fire, priority=prio)

        spawn(0)

    runs = []
    for batched in (True, False):
        env, model, stop = Environment(), _Model(), [stop_at]
        fired: list[tuple[float, int]] = []
        build(env, model, stop, fired, batched)
        ticks: list[float] = []
        if loop == "bounded":
            env.run_bounded(stop, model, functools.partial(_tick, env, ticks), every=2)
        elif loop == "step":
            while not model.dead and env.peek() <= stop[0]:
                env.step()
        else:
            env.run()
        runs.append((fired, env.events_processed, env.now, ticks, stop[0]))
    assert runs[0] == runs[1]


def test_a_batch_yields_to_an_earlier_event_and_resumes() -> None:
    """Calls at t=1 batched (order 1, 3), a plain call at t=1 in between (order 2): 1, 2, 3."""
    env = Environment()
    fired: list[str] = []
    batches: dict[float, Any] = {}
    env.call_at_batched(1.0, lambda: fired.append("a"), batches)
    env.call_at(1.0, lambda: fired.append("b"))
    env.call_at_batched(1.0, lambda: fired.append("c"), batches)
    assert len(env._heap) == 2  # one entry for the batch
    env.run_bounded([10.0], _Model())
    assert fired == ["a", "b", "c"]
    assert env.events_processed == 3
    assert not batches  # a batch run leaves

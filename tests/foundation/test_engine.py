"""The discrete-event core and the RNG streams."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lpmsim.engine.core import Environment, SimulationError
from lpmsim.engine.rng import RngStreams


def test_same_time_events_fire_in_scheduling_order() -> None:
    env = Environment()
    seen: list[int] = []
    for i in range(10):
        env.call_at(1.0, lambda i=i: seen.append(i))
    env.run()
    assert seen == list(range(10))


def test_urgent_priority_first_at_equal_time() -> None:
    env = Environment()
    seen: list[str] = []
    env.call_at(2.0, lambda: seen.append("normal"))
    env.call_at(2.0, lambda: seen.append("urgent"), priority=0)
    env.run()
    assert seen == ["urgent", "normal"]


def test_process_yields_and_returns() -> None:
    env = Environment()
    out: list[float] = []

    def proc():  # type: ignore[no-untyped-def]
        yield env.timeout(1.5)
        out.append(env.now)
        yield env.timeout(0.5)
        out.append(env.now)
        return "done"

    p = env.process(proc())
    env.run()
    assert out == [1.5, 2.0]
    assert p.value == "done"


def test_negative_delay_and_past_call_rejected() -> None:
    env = Environment()
    with pytest.raises(SimulationError):
        env.timeout(-1.0)
    env.run(until=5.0)
    with pytest.raises(SimulationError):
        env.call_at(1.0, lambda: None)


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=200))
def test_time_never_goes_backwards(delays: list[float]) -> None:
    env = Environment()
    seen: list[float] = []
    for d in delays:
        env.call_at(d, lambda: seen.append(env.now))
    env.run()
    assert seen == sorted(seen)
    assert len(seen) == len(delays)


def test_named_streams_are_independent_of_each_other() -> None:
    a = RngStreams(7)
    a_x = a["x"].random(5)
    b = RngStreams(7)
    b["new consumer"].random(1000)  # another consumer draws first
    assert np.array_equal(b["x"].random(5), a_x)
    assert not np.array_equal(RngStreams(8)["x"].random(5), a_x)
    assert not np.array_equal(RngStreams(7)["y"].random(5), a_x)

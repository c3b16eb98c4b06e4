"""The exact mode's speed-ups of issue 12, round 5, leave every result as it was.

Each shortcut has a switch that turns it off (``ExactLink.defer_checks``, ``ExactGuest.inline_wakes``,
``_Touch.prune_resident``); with all of them off the code runs as before the round.  Whole runs
with and without them must give the same summary and kernel log, and the event core's two new
entry points (``Environment.wake_inline``, ``Environment.call_in_place``) must fire the same events
in the same order as the plain yields and pushes they stand for.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Generator
from heapq import heappop, heappush
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpmsim.engine.core import Environment, Event
from lpmsim.guest.vcpu import ExactGuest, _Touch
from lpmsim.hypervisor.exact import ExactLink
from lpmsim.runner import run_scenario

from .helpers import scenario


def _run(*overrides: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> str:
    """The summary (without ``wall_s``) and the kernel log of one run, as one string."""
    with monkeypatch.context() as m:
        m.setattr(ExactLink, "defer_checks", fast)
        m.setattr(ExactGuest, "inline_wakes", fast)
        m.setattr(_Touch, "prune_resident", fast)
        log: list[str] = []
        summary = run_scenario(scenario(*overrides), kernel_log=log)
    summary.pop("wall_s")
    return json.dumps(summary, sort_keys=True) + "\n".join(log)


@pytest.mark.parametrize(
    "overrides",
    [
        ("sim.seed=3",),
        ("sim.seed=5", "platform.discipline=demand-first", "platform.prefetch_pages=4"),
        ("sim.seed=7", "partition.vcpus=16", "platform.push_order=hottest-first", "workload.preset=oltp"),
    ],
)
def test_an_exact_run_is_the_same_with_and_without_the_shortcuts(
    overrides: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    ov = ("sim.mode=exact", "partition.memory_gib=1", *overrides)
    fast = _run(*ov, fast=True, monkeypatch=monkeypatch)
    slow = _run(*ov, fast=False, monkeypatch=monkeypatch)
    assert fast == slow
    assert '"events"' in fast


platforms = st.fixed_dictionaries(
    {
        "discipline": st.sampled_from(["shared-fifo", "demand-first"]),
        "prefetch": st.integers(0, 8),
        "window": st.integers(1, 128),
        "order": st.sampled_from(["address", "hottest-first"]),
        "vcpus": st.integers(1, 8),
        "seed": st.integers(0, 2**32),
        "rate": st.sampled_from([0.2, 1.0, 3.0]),
    }
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(platforms)
def test_exact_runs_agree_over_platforms(p: dict[str, object]) -> None:
    ov = (
        "sim.mode=exact",
        "partition.memory_gib=0.5",
        f"platform.discipline={p['discipline']}",
        f"platform.prefetch_pages={p['prefetch']}",
        f"platform.push_window_pages={p['window']}",
        f"platform.push_order={p['order']}",
        f"partition.vcpus={p['vcpus']}",
        f"sim.seed={p['seed']}",
        f"workload.touch_scale={p['rate']}",
    )
    with pytest.MonkeyPatch.context() as mp:
        assert _run(*ov, fast=True, monkeypatch=mp) == _run(*ov, fast=False, monkeypatch=mp)


# -- Environment.wake_inline -------------------------------------------------------------------

step_lists = st.lists(
    st.lists(st.sampled_from([0.0, 1e-9, 0.25, 0.5, 1.0, 1.0, 0.1, 0.2, 0.7]), min_size=1, max_size=10),
    min_size=1,
    max_size=6,
)


class _Model:
    def __init__(self) -> None:
        self.dead = False


def _trace(
    waits: list[list[float]], inline: bool, stop_at: float, die_at: int
) -> tuple[list[tuple[float, int, int]], int, float]:
    """Processes that wait ``waits[i]`` in turn (each resumed by its own wake-up may skip the
    yield with ``wake_inline``), a call per wait, under ``run_bounded`` with a stop time that moves
    and a model that dies after ``die_at`` things happened."""
    env = Environment()
    model = _Model()
    stop = [stop_at]
    seen: list[tuple[float, int, int]] = []

    def note(item: tuple[float, int, int]) -> None:
        seen.append(item)
        if len(seen) == die_at:
            model.dead = True
        if len(seen) == 3:
            stop[0] += 0.5

    def proc(i: int, ws: list[float]) -> Generator[Event | float, Any, None]:
        own = False
        for j, w in enumerate(ws):
            env.call_at(env.now + w, functools.partial(note, (-1.0, i, j)))
            if j % 3 == 2:
                yield env.timeout(w)  # resumed by a Timeout: not its own wake-up
                own = False
            else:
                if not (inline and own and env.wake_inline(env.now + w)):
                    yield w
                own = True
            note((env.now, i, j))

    for i, ws in enumerate(waits):
        env.process(proc(i, ws))
    env.run_bounded(stop, model)
    return seen, env.events_processed, env.now


@settings(max_examples=150, deadline=None)
@given(step_lists, st.floats(0.0, 4.0), st.integers(0, 40))
def test_wake_inline_is_a_yield(waits: list[list[float]], stop_at: float, die_at: int) -> None:
    """Skipping a yield where ``wake_inline`` allows it: the same things happen at the same times
    in the same order, the same number of events, the same clock at the end."""
    assert _trace(waits, True, stop_at, die_at) == _trace(waits, False, stop_at, die_at)


def test_wake_inline_outside_run_bounded_or_behind_an_event_says_no() -> None:
    env = Environment()
    assert not env.wake_inline(1.0)  # not inside run_bounded
    got: list[bool] = []
    env.call_at(2.0, lambda: None)

    def first() -> None:
        got.append(env.wake_inline(2.0))  # an event is due at 2.0 already: it goes first
        got.append(env.wake_inline(float("nan")))
        got.append(env.wake_inline(1.5))
        got.append(env.now == 1.5)

    env.call_at(1.0, first)
    env.run_bounded([10.0], _Model())
    assert got == [False, False, True, True]
    assert env.events_processed == 3  # the two calls and the wake-up run inline


# -- Environment.call_in_place ---------------------------------------------------------------------

plans = st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0, 3.5]), st.booleans()), max_size=40)


def _fired(plan: list[tuple[float, bool]], deferred: bool) -> tuple[list[tuple[float, int]], int]:
    """Calls at ``now + delay`` from a driver that schedules one at each of its steps; with
    ``deferred`` those marked True are kept in a private heap and pushed with ``call_in_place``
    only when they are the earliest of it (as ``ExactLink`` keeps its checks)."""
    env = Environment()
    fired: list[tuple[float, int]] = []
    kept: list[tuple[float, int, int]] = []
    in_heap: set[int] = set()

    def push_first() -> None:
        if kept and kept[0][1] not in in_heap:
            t, order, _k = kept[0]
            in_heap.add(order)
            env.call_in_place(t, order, fire_kept)

    def fire_kept() -> None:
        _t, order, k = heappop(kept)
        in_heap.remove(order)
        fired.append((env.now, k))
        push_first()

    def fire(k: int) -> None:
        fired.append((env.now, k))

    def driver() -> Generator[Event | float, Any, None]:
        for k, (delay, keep) in enumerate(plan):
            t = env.now + delay
            if deferred and keep:
                heappush(kept, (env.now + (t - env.now), env.next_order(), k))
                push_first()
            else:
                env.call_at(t, functools.partial(fire, k))
            yield 0.25

    env.process(driver())
    env.run()
    return fired, env.events_processed


@settings(max_examples=150, deadline=None)
@given(plans)
def test_call_in_place_keeps_the_order_of_call_at(plan: list[tuple[float, bool]]) -> None:
    assert _fired(plan, deferred=True) == _fired(plan, deferred=False)


# -- _Touch.prune ----------------------------------------------------------------------------------


class _Pages:
    def __init__(self, counts: list[int]) -> None:
        self.region_count = counts
        self.regions_done = 1


@given(
    st.lists(
        st.tuples(st.floats(1e-6, 1.0), st.floats(0.0, 1.0), st.booleans()),
        min_size=1,
        max_size=7,
    )
)
def test_the_touch_mass_without_resident_regions_is_the_same_float(
    terms: list[tuple[float, float, bool]],
) -> None:
    weights = [w for w, _m, _done in terms]
    mass = [0.0 if done else m for _w, m, done in terms]
    tc = _Touch(1.0, list(range(len(terms))), weights)
    tc.prune(_Pages([0 if done else 1 for _w, _m, done in terms]))  # type: ignore[arg-type]
    full = sum(w * m for w, m in zip(weights, mass, strict=True))
    pruned = 0.0
    for r, w in tc.live:  # as ``_first_touch`` adds them
        pruned += w * mass[r]
    assert pruned == full and repr(pruned) == repr(full)
    assert [r for r, _w in tc.live] == [r for r, t in enumerate(terms) if not t[2]]
    assert tc.done == 1

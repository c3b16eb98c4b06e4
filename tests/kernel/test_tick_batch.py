"""The hard-lockup tick's heartbeats at once (``HardLockup._beat_all``) against ``_beat`` CPU by CPU.

Two identical kernel models are put in the same random heartbeat state (pending, stuck and blocked
CPUs, the last reset, the kernel version); one runs the tick as the model does, the other with the
batch path switched off, so that every CPU beats through ``_beat`` in ascending order.  Everything
the heartbeat touches must come out equal: the TB values, the pending mask, the reset time, the
stuck set, the log, the events, the next tick.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lpmsim.config.loader import build_scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates
from lpmsim.kernel.model import KernelModel, KernelRun

from .harness import BASE, merge


def _model(n: int, version: str) -> tuple[Environment, KernelModel]:
    sc = build_scenario(merge(BASE, {"partition": {"vcpus": n}, "kernel": {"version": version}}))
    env = Environment(0.0)
    cpus = CpuStates(n, lambda: env.now)
    kr = KernelRun(env, cpus, sc.kernel, sc.script, RngStreams(1)["kernel/nmi"])
    return env, kr.model


def _state(env: Environment, m: KernelModel) -> dict[str, Any]:
    h = m.hard
    return {
        "tb": list(h.tb),
        "pending": sorted(h.pending),
        "last_reset": h.last_reset,
        "stuck": sorted(h.stuck),
        "quiet": h.quiet,
        "tick_at": h.tick_at,
        "log": m.log.lines(),
        "events": list(m.events),
        "dead": m.dead,
        "next_event": env.peek(),
    }


@st.composite
def heartbeat_states(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 24))
    cpus = st.sets(st.integers(0, n - 1), max_size=n)
    return {
        "n": n,
        "version": draw(st.sampled_from(["6.6.3", "5.15"])),
        "blocked": draw(cpus),
        "pending": draw(cpus),
        "stuck": draw(cpus),
        # ticks since the last reset: below, at and past the SMP timeout (15 s at thresh 10: 4 ticks of 4 s)
        "since": draw(st.integers(0, 6)),
        "tick": draw(st.integers(6, 12)),
        "tb_age": draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)),
    }


@settings(max_examples=300, deadline=None)
@given(heartbeat_states())
def test_a_batched_tick_is_the_beats_one_by_one(s: dict[str, Any]) -> None:
    runs = []
    for batch in (True, False):
        env, m = _model(s["n"], s["version"])
        h = m.hard
        for c in sorted(s["blocked"]):
            m.states.set_stalled(c, True)
        p = m.grid.p
        g = m.grid.t0 + s["tick"] * p
        h.pending = set(s["pending"])
        h.stuck = set(s["stuck"])
        h.last_reset = g - s["since"] * p
        h.tb = [g - a * p for a in s["tb_age"]]
        h.quiet = False
        h.tick_at = g
        if not batch:
            h._quiet_round = lambda g, first: False  # type: ignore[method-assign]
        h._tick(g)
        runs.append(_state(env, m))
    assert runs[0] == runs[1]


def test_the_batch_path_is_taken_and_resets_where_the_last_pending_cpu_beats() -> None:
    # 8 CPUs, CPU 3 and 6 stalled: pending {1, 2, 5}: all three beat, the mask empties at CPU 5;
    # the new mask keeps the CPUs at or below 5 and the stalled ones: {0, 1, 2, 3, 4, 5, 6}
    _env, m = _model(8, "6.6.3")
    h = m.hard
    for c in (3, 6):
        m.states.set_stalled(c, True)
    g = m.grid.t0 + 5 * m.grid.p
    h.pending, h.last_reset, h.tick_at = {1, 2, 5}, g - m.grid.p, g
    assert h._quiet_round(g, 0)
    h._tick(g)
    assert h.pending == {0, 1, 2, 3, 4, 5, 6}
    assert h.last_reset == g
    assert [h.tb[c] for c in (0, 1, 2, 5)] == [g] * 4
    assert h.tb[7] == 0.0  # beats after the reset are not stored (tb_of computes them lazily)

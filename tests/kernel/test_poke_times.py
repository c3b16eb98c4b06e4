"""``KernelModel._refresh``'s poke test keeps the times of RCU's stall jiffy for the ``js`` it saw
last (``_StallJiffyTimes``, docs/performance.md "Round 7"); they must be those of the ``js`` of the
grace period in progress, grace period after grace period.

tests/kernel/test_transition_path.py compares the model with the hooks it inlines, but a stale
pair of times rarely changes what the model does (RCU's ``js`` grows from one grace period to the
next, and the times of an older, smaller ``js`` make the test call ``RcuStall.poke`` where it does
nothing): so the cache is held to its ``js`` here, after every timer transition of CPUs stalling
and running again over several grace periods.
"""

from __future__ import annotations

from lpmsim.config.loader import build_scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates
from lpmsim.kernel.model import KernelRun
from lpmsim.kernel.rcu_stall import RCU_STALL_RAT_DELAY

N = 4


def test_the_poke_tests_times_are_those_of_the_grace_period_in_progress() -> None:
    sc = build_scenario(
        {
            "partition": {"vcpus": N, "memory_gib": 4},
            "migration": {"enabled": False},
            "sim": {"max_time_s": 900, "mode": "exact"},
        }
    )
    streams = RngStreams(sc.sim.seed)
    env = Environment(0.0)
    cs = CpuStates(N, lambda: env.now)
    kr = KernelRun(env, cs, sc.kernel, sc.script, streams["kernel/nmi"])
    m, rcu, clock = kr.model, kr.model.rcu, kr.model.clock

    def run_to(t: float) -> None:
        while not m.dead and env.peek() <= t:
            env.step()
        env.now = max(env.now, t)

    seen: list[float] = []
    t = 1.0
    for cycle in range(4):
        run_to(t)
        cs.set_stalled(1 + cycle % 2, True)  # a timer transition: a grace period starts if none is on
        assert rcu.active
        fqs3 = rcu.fqs3
        js = rcu.js if fqs3 is None else fqs3 + rcu.timeout_j
        pk = m._pk
        assert pk.js == js
        assert pk.jt == int(js) / clock.hz - clock.offset
        assert pk.jr == (int(js) + RCU_STALL_RAT_DELAY) / clock.hz - clock.offset
        seen.append(js)
        t += 0.5
        run_to(t)
        cs.set_stalled(1 + cycle % 2, False)  # the holdout's quiescent state ends the grace period
        t += 3.0
    assert len(set(seen)) == len(seen)  # a new js each time: the times followed it

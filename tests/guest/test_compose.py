"""Per-CPU states compose (issue 13, section 6; ``lpmsim.guest.cpustate``).

* Unit and property tests of ``CpuStates``: a stall is held by a set of owners (stalled while any
  holds), a context by holders over the workload's (the most restrictive held, the workload's
  kept for when the last hold ends), a holder's task over the workload's.
* The issue's test: the same scripted stall of CPU 5 (40 s, in the hypervisor) gives the same
  hard-lockup report window with and without a concurrent migration, in both modes.  Before the
  stall composed, the guest's next demand-fault completion on CPU 5 ended the scripted stall after
  one fault latency and no detector saw it (exact mode: no report at all).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpmsim.config.loader import load_scenario
from lpmsim.guest.cpustate import GUEST, QUIESCENT, STRICTNESS, CpuStates, Ctx, Task
from lpmsim.runner import run_scenario


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _states(n: int = 2) -> tuple[Clock, CpuStates, list[tuple[int, float]]]:
    clock = Clock()
    cs = CpuStates(n, clock)
    seen: list[tuple[int, float]] = []
    cs.subscribe(lambda c, t: seen.append((c, t)))
    return clock, cs, seen


def test_a_stall_ends_when_its_last_owner_lets_go() -> None:
    _clock, cs, seen = _states()
    cs.set_stalled(1, True, "script#0")
    cs.set_stalled(1, True)  # a demand fault during the scripted stall
    cs.set_stalled(1, False)  # served: the script still holds it
    assert cs.is_stalled(1) and not cs.can_take_nmi(1)
    assert cs.stalled_by(1) == {"script#0"}
    assert seen == [(1, 0.0)]  # one change told: stalled; the fault changed nothing observable
    cs.set_stalled(1, False, "script#0")
    assert not cs.is_stalled(1) and seen == [(1, 0.0), (1, 0.0)]
    cs.set_stalled(1, False, "script#0")  # a release by an owner that holds nothing: no change
    assert len(seen) == 2


def test_the_guest_stall_stays_a_boolean() -> None:
    _clock, cs, _seen = _states()
    cs.set_stalled(0, True)
    cs.set_stalled(0, True)  # published twice (fluid re-publishes without unpublishing)
    cs.set_stalled(0, False)
    assert not cs.is_stalled(0)


def test_a_hold_keeps_the_most_restrictive_context_and_the_workload_comes_back() -> None:
    clock, cs, seen = _states()
    cs.set_ctx(0, Ctx.KERNEL)
    clock.t = 1.0
    cs.set_ctx(0, Ctx.IRQS_HARD_OFF, "script#0")
    cs.set_ctx(0, Ctx.PREEMPT_OFF, "script#1")  # nested inside: does not relax it
    cs.set_ctx(0, Ctx.USER)  # the workload's own transition: kept, not shown
    assert cs.cpus[0].ctx == Ctx.IRQS_HARD_OFF and not cs.can_take_timer(0) and not cs.can_schedule(0)
    assert cs.cpus[0].last_qs == 0.0  # USER while held is no quiescent state
    n = len(seen)
    cs.release_ctx(0, "script#0")
    assert cs.cpus[0].ctx == Ctx.PREEMPT_OFF and cs.can_take_timer(0) and not cs.can_schedule(0)
    clock.t = 2.0
    cs.release_ctx(0, "script#1")
    assert cs.cpus[0].ctx == Ctx.USER and cs.can_schedule(0)
    assert cs.cpus[0].last_qs == 2.0  # back in user mode: a quiescent state
    assert len(seen) == n + 2


def test_a_holders_task_and_the_workloads_switches_meanwhile() -> None:
    clock, cs, _seen = _states()
    worker = Task("oltp-worker", 1000)
    cs.set_task(0, worker)
    clock.t = 1.0
    cs.set_task(0, Task("script/0", 1000), "script#0")
    cs.set_ctx(0, Ctx.PREEMPT_OFF, "script#0")
    clock.t = 2.0
    cs.set_task(0, Task("swapper/0", 0))  # the workload would go idle: no switch while held
    assert cs.current_task(0) == Task("script/0", 1000) and cs.cpus[0].last_switch == 1.0
    clock.t = 3.0
    cs.release_ctx(0, "script#0")
    assert cs.current_task(0) == Task("swapper/0", 0) and cs.cpus[0].last_switch == 3.0


_OWNERS = (GUEST, "suspend", "script#0", "script#1", "bug")
_op = st.tuples(
    st.sampled_from(("stall", "ctx", "task")),
    st.integers(0, 1),  # vCPU
    st.sampled_from(_OWNERS),
    st.booleans(),  # stall on / off; ctx: hold / release (the guest: always a set)
    st.sampled_from(list(Ctx)),
    st.floats(0.0, 5.0),  # time advanced before it
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_op, max_size=60))
def test_any_interleaving_of_owners(ops: list[tuple[str, int, str, bool, Ctx, float]]) -> None:
    """stalled == some owner holds it; ctx == the most restrictive hold, else the workload's; the
    times a change is told at and every last_qs / last_switch never go backwards."""
    clock, cs, seen = _states()
    stall_by: list[set[str]] = [set(), set()]
    holds: list[dict[str, Ctx]] = [{}, {}]
    guest_ctx = [Ctx.IDLE, Ctx.IDLE]
    last = [(0.0, 0.0), (0.0, 0.0)]
    for kind, cpu, owner, on, ctx, dt in ops:
        clock.t += dt
        if kind == "stall":
            cs.set_stalled(cpu, on, owner)
            (stall_by[cpu].add if on else stall_by[cpu].discard)(owner)
        elif kind == "ctx":
            if owner == GUEST:
                cs.set_ctx(cpu, ctx)
                guest_ctx[cpu] = ctx
            elif on:
                cs.set_ctx(cpu, ctx, owner)
                holds[cpu].pop(owner, None)
                holds[cpu][owner] = ctx
            else:
                cs.release_ctx(cpu, owner)
                holds[cpu].pop(owner, None)
        else:
            cs.set_task(cpu, Task(owner, 1), owner)
        for c in (0, 1):
            state = cs.cpus[c]
            assert cs.is_stalled(c) == bool(stall_by[c])
            assert state.stall_by == stall_by[c]
            if holds[c]:
                top = max(STRICTNESS[x] for x in holds[c].values())
                assert STRICTNESS[state.ctx] == top
            else:
                assert state.ctx == guest_ctx[c]
            assert cs.can_take_timer(c) == (
                not stall_by[c] and state.ctx not in (Ctx.IRQS_SOFT_OFF, Ctx.IRQS_HARD_OFF)
            )
            now = (state.last_qs, state.last_switch)
            assert now[0] >= last[c][0] and now[1] >= last[c][1]
            assert now[0] <= clock.t and now[1] <= clock.t
            last[c] = now
    times = [t for _c, t in seen]
    assert times == sorted(times)


def test_quiescent_needs_running() -> None:
    clock, cs, _seen = _states()
    cs.set_ctx(0, Ctx.KERNEL)
    cs.set_stalled(0, True, "suspend")
    clock.t = 1.0
    cs.set_ctx(0, Ctx.USER)  # entered while stalled: no quiescent state
    assert Ctx.USER in QUIESCENT and cs.cpus[0].last_qs == 0.0


# -- the test: a scripted stall with and without a concurrent migration ---------------------

STALL_AT = 361.0  # 17 s after the resume (344.25) of the setting below; its post-copy lasts ~57 s
STALL_S = 40.0
PERIOD_S = 4.0  # the heartbeat period (watchdog_thresh 10 x 2/5)


def _scripted(mode: str, migrating: bool) -> dict[str, Any]:
    over = [
        f"sim.mode={mode}",
        "platform.link_gbps=0.1",
        "migration.resume_missing_fraction=0.3",
        "mitigation.policy=none",  # no LPM factor: the same hard-lockup timeouts in both runs
        "kernel.post_mobility_rtas=[]",
        f'script=[{{cpu=5, at_s={STALL_AT}, state="stalled", duration_s={STALL_S}}}]',
        f"migration.enabled={str(migrating).lower()}",
        f"sim.max_time_s={STALL_AT + STALL_S + 20}",
    ]
    return run_scenario(load_scenario(preset="small", overrides=over, seed=1))


def _hard(s: dict[str, Any]) -> list[tuple[float, str, str, list[int]]]:
    return [
        (e["time_s"], e["detector"], e["kind"], e["cpus"])
        for e in s["events"]
        if e["detector"] in ("hardlockup", "nmi_ipi", "panic")
    ]


@pytest.mark.parametrize("mode", ["exact", "fluid"])
def test_scripted_stall_same_report_window_with_a_migration(mode: str) -> None:
    """CPU 5 stalled 361-401 s: without a migration CPU 0 reports it at 380 (its last heartbeat
    360, pending reset at 364, 364 + 15 -> the grid point 380), the NMI IPI times out at 381.1 (the 1 s udelay(1) loop: 1.1 s), the
    reset is taken at the stall's end (401: a dump request) and the panic follows 2 s later.  With
    a post-copy in progress (CPU 5 takes demand faults during the stall) the same reports come: the
    SMP report within one heartbeat period of 380 (the other CPUs' own faults shift their
    heartbeats by a few ms, which can move the pending reset a grid point), the dump at the stall's
    end or when the demand fault in progress then is served."""
    alone = _scripted(mode, migrating=False)
    moving = _scripted(mode, migrating=True)
    assert moving["lpm"]["resume_s"] < STALL_AT
    # the post-copy lasts until the crash that follows the stall: CPU 5 takes demand faults during it
    assert moving["migration"]["postcopy_s"] + moving["lpm"]["resume_s"] >= STALL_AT + STALL_S
    a, m = _hard(alone), _hard(moving)
    assert [x[1:] for x in a] == [
        ("hardlockup", "smp-detected", [5]),
        ("nmi_ipi", "timeout", [5]),
        ("nmi_ipi", "dump", [5]),
        ("panic", "panic", [5]),
    ]
    assert [x[0] for x in a] == pytest.approx([380.0, 381.1, STALL_AT + STALL_S, STALL_AT + STALL_S + 2])
    assert [x[1:] for x in m] == [x[1:] for x in a], m
    (t_rep, t_to, t_dump, t_panic), lat = [x[0] for x in m], moving["migration"]["fault_latency_s"]["max"]
    assert 380.0 - PERIOD_S <= t_rep <= 380.0 + lat and t_to == pytest.approx(t_rep + 1.1)
    assert STALL_AT + STALL_S <= t_dump <= STALL_AT + STALL_S + lat and t_panic == pytest.approx(t_dump + 2.0)
    assert alone["crash"]["cause"] == moving["crash"]["cause"] == "system_reset_dump"

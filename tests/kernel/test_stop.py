"""Issue 13 (sections 4, 5, 7): the soft-lockup clock, the stop_machine rendezvous state, the
mobility sleeps and the moment ``nmi_wd_lpm_factor`` is read.  Hand-computed scripted cases of
the same behaviours are in cases_stop.py."""

from __future__ import annotations

import pytest

from lpmsim.config.loader import build_scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates, Ctx
from lpmsim.guest.fluid import FluidGuest
from lpmsim.guest.metrics import GuestMetrics
from lpmsim.hypervisor.layout import Layout
from lpmsim.hypervisor.migration import Migration
from lpmsim.kernel.hooks import DefaultGuestHooks, stopper_task
from lpmsim.kernel.mobility import msecs_to_jiffies, msleep_wake
from lpmsim.kernel.model import KernelModel, KernelRun
from lpmsim.kernel.timing import Clock, RunningClock
from lpmsim.runner import _start_guest

from .harness import BASE, MIGRATION, merge


# -- msleep / ssleep ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("t", "msecs", "hz", "wake"),
    [
        (0.0, 1000, 100, 1.04),  # 101 jiffies, level 1 (8 jiffies): ((101 >> 3) + 1) << 3 = 104
        (0.0, 500, 100, 0.51),  # 51 jiffies, level 0: exact
        (1.290015, 500, 100, 1.80),  # from jiffy 129 to 180: 0.509985 s
        (3.0, 1000, 100, 4.08),  # jiffy 300 + 101 = 401 -> ((401 >> 3) + 1) << 3 = 408
        (0.0, 1000, 1000, 1.024),  # 1001 jiffies, level 2 (64): ((1001 >> 6) + 1) << 6 = 1024
    ],
)
def test_msleep_wakes_at_the_hand_computed_tick(t: float, msecs: int, hz: int, wake: float) -> None:
    assert msleep_wake(t, msecs, Clock(0.0, 512_000_000, hz)) == pytest.approx(wake, abs=1e-9)


def test_msleep_lasts_at_least_the_jiffies_asked() -> None:
    """msleep(500) at HZ=100 is 51 jiffies: from a tick 0.51 s, never less than 0.50 s."""
    clock = Clock(0.0, 512_000_000, 100)
    assert msecs_to_jiffies(500, 100) + 1 == 51
    for k in range(200):
        t = k * 0.00137
        assert 0.50 < msleep_wake(t, 500, clock) - t <= 0.51 + 1e-9


# -- the soft-lockup clock ------------------------------------------------------------------------------
def test_vtb_clock_leaves_out_stalls_and_the_steal_share() -> None:
    env = Environment(0.0)
    cpus = CpuStates(2, lambda: env.now)
    seen: list[tuple[int, float]] = []
    rc = RunningClock(Clock(0.0, 512_000_000, 100), cpus, 0.0, lambda c, t: seen.append((c, t)))
    tb = RunningClock(Clock(0.0, 512_000_000, 100), cpus, 0.0, None)
    env.call_at(10.0, lambda: cpus.set_stalled(1, True))
    env.call_at(15.0, lambda: cpus.set_stalled(1, False))
    env.call_at(20.0, lambda: cpus.set_steal_frac(1, 0.5))
    env.run(until=40.0)
    # CPU 1: 40 s of wall time, 5 s stalled, 20 s at half speed -> 25 s of VTB
    assert rc.seconds(1, 40.0) == pytest.approx(25.0)
    assert rc.units(1, 40.0) == int(25e9) >> 30 == 23
    assert rc.rate(1) == pytest.approx(0.5)
    assert rc.seconds(0, 40.0) == 40.0 and rc.units(0, 40.0) == tb.units(1, 40.0) == 37
    assert seen == [(1, 10.0), (1, 15.0), (1, 20.0)]


def test_a_steal_share_delays_the_vtb_report() -> None:
    """CPU 2 preempt_off from 100.5 (touch 100, u = 93) with half its time stolen from 100.5: the
    clock reaches 122.406 s (u = 114) at t = 100.5 + 21.906 * 2 = 144.31: the run at 148 reports
    (clock 124.25, u = 115), "stuck for 22s"."""
    data = merge(
        BASE,
        {
            "kernel": {
                "softlockup_clock": "vtb",
                "rcu_cpu_stall_suppress": 1,
            },  # RCU reports touch (cases_rcu.py)
            "sim": {"max_time_s": 150},
            "script": [{"cpu": 2, "at_s": 100.5, "state": "preempt_off", "duration_s": "inf"}],
        },
    )
    sc = build_scenario(data)
    env = Environment(0.0)
    cpus = CpuStates(sc.partition.vcpus, lambda: env.now)
    kr = KernelRun(env, cpus, sc.kernel, sc.script, RngStreams(1)["kernel/nmi"])
    env.call_at(100.5, lambda: cpus.set_steal_frac(2, 0.5))
    env.run(until=150.0)
    soft = [e for e in kr.model.events if e["detector"] == "softlockup"]
    assert [(e["time_s"], e["line"]) for e in soft] == [
        (148.0, "watchdog: BUG: soft lockup - CPU#2 stuck for 22s! [script/2:1002]")
    ]


# -- the stop_machine rendezvous ------------------------------------------------------------------------
def test_arrived_cpus_take_timers_pass_rcu_qs_and_do_not_schedule() -> None:
    sc = build_scenario(BASE)
    env = Environment(0.0)
    cpus = CpuStates(4, lambda: env.now)
    hooks = DefaultGuestHooks(env, cpus)
    m = KernelModel(env, cpus, sc.kernel, RngStreams(1)["kernel/nmi"], hooks)
    cpus.set_ctx(1, Ctx.PREEMPT_OFF)  # the straggler
    done = hooks.stop_machine(range(4))
    assert not done.triggered and hooks.rendezvous == {0, 2, 3}
    for c in (0, 2, 3):
        assert cpus.can_take_timer(c) and not cpus.can_schedule(c)
        assert cpus.current_task(c) == stopper_task(c)
        assert hooks.in_stop_machine(c) and m.tok[c] and not m.sok[c] and m.qok[c]
    assert m.nonsched == {0, 1, 2, 3} and m.nonqs == {1}
    cpus.set_ctx(1, Ctx.KERNEL)  # the straggler's stopper runs: MULTI_STOP_DISABLE_IRQ
    assert done.triggered and hooks.rendezvous == set()
    assert all(cpus.cpus[c].ctx == Ctx.IRQS_HARD_OFF for c in range(4))
    assert m.nonqs == {0, 1, 2, 3}
    hooks.release_machine()
    assert [cpus.cpus[c].ctx for c in range(4)] == [Ctx.IDLE, Ctx.KERNEL, Ctx.IDLE, Ctx.IDLE]
    assert [cpus.current_task(c).comm for c in range(4)] == [f"swapper/{c}" for c in range(4)]
    assert m.nonsched == set() and m.nonqs == set()


# -- nmi_wd_lpm_factor is read on entry ---------------------------------------------------------------
def _migrate_with_write(at: float, value: int) -> list[str]:
    sc = build_scenario(merge(MIGRATION, {"kernel": {"post_mobility_rtas": []}, "sim": {"max_time_s": 30}}))
    streams = RngStreams(sc.sim.seed)
    env = Environment(0.0)
    layout = Layout(sc, streams["layout"])
    mig = Migration(env, sc, layout, streams)
    cpus = CpuStates(sc.partition.vcpus, lambda: env.now)
    metrics = GuestMetrics(sc.partition.vcpus)
    guest = FluidGuest(env, sc, layout, cpus, streams, metrics)
    metrics.records_start_now(lambda: env.now)
    env.process(mig.run(), name="migration")
    kr = KernelRun(env, cpus, sc.kernel, sc.script, streams["kernel/nmi"], mig, guest)
    mig.resumed.add_callback(lambda _e: _start_guest(mig, guest))
    env.call_at(at, lambda: kr.model.write_sysctl("kernel.nmi_wd_lpm_factor", value, at))
    env.run(until=10.0)
    return [ln.split("] ", 1)[1] for ln in kr.model.log.lines()]


def test_a_factor_written_after_entry_is_not_seen() -> None:
    """pseries_migrate_partition() reads nmi_wd_lpm_factor on entry (t=0); SUSPENDING is seen at 1.04:
    a write at 0.5 is for the next migration."""
    lines = _migrate_with_write(0.5, 0)
    assert "watchdog: Set the NMI watchdog timeout factor to 200%" in lines
    lines = _migrate_with_write(0.5, 300)
    assert "watchdog: Set the NMI watchdog timeout factor to 200%" in lines
    assert not any("300%" in ln for ln in lines)


def test_a_clock_that_stood_still_is_planned_when_it_runs_again() -> None:
    """All of CPU 2's time stolen (steal share 1) from 100.5 to 130.5, then none: its clock stands at
    100.5 meanwhile (touch 100, u = 93); the run planned for 124 finds clock 100.5 and cannot plan
    (the clock stands); after 130.5 the clock is t - 30 and reaches 122.406 s (u = 114) at t =
    152.41: the run at 156 reports (clock 126, u = 117), "stuck for 24s"."""
    data = merge(
        BASE,
        {
            "kernel": {"softlockup_clock": "vtb", "nmi_watchdog": 0},
            "sim": {"max_time_s": 160},
            "script": [{"cpu": 2, "at_s": 100.5, "state": "preempt_off", "duration_s": "inf"}],
        },
    )
    sc = build_scenario(data)
    env = Environment(0.0)
    cpus = CpuStates(sc.partition.vcpus, lambda: env.now)
    kr = KernelRun(env, cpus, sc.kernel, sc.script, RngStreams(1)["kernel/nmi"])
    env.call_at(100.5, lambda: cpus.set_steal_frac(2, 1.0))
    env.call_at(130.5, lambda: cpus.set_steal_frac(2, 0.0))
    env.run(until=160.0)
    soft = [e for e in kr.model.events if e["detector"] == "softlockup"]
    assert [(e["time_s"], e["line"]) for e in soft] == [
        (156.0, "watchdog: BUG: soft lockup - CPU#2 stuck for 24s! [script/2:1002]")
    ]

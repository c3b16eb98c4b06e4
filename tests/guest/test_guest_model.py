"""The guest model: hand-built cases with known answers, invariants, and exact/fluid agreement.

Hand computation for the ``small`` preset's link: tau = 524.288 µs (64 KiB on 1 Gb/s), rtt 100 µs,
fault overhead 50 µs, so a fault on an idle link takes BASE = 674.288 µs.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpmsim.config.loader import load_scenario
from lpmsim.engine.core import Environment, Event
from lpmsim.guest.cpustate import Ctx
from lpmsim.guest.locks import Spinlock
from lpmsim.guest.vcpu import ExactGuest, _Touch
from lpmsim.runner import simulate

from .helpers import guest_on_bare_link

TAU = 524_288 / 1e9
BASE = 100e-6 + TAU + 50e-6


def test_irqs_off_section_lasts_cpu_time_plus_each_latency() -> None:
    """A section of CPU time c touching k missing pages lasts exactly c + k x BASE on an idle link."""
    env, guest, cpus = guest_on_bare_link([])
    layout = guest.layout
    region = layout.index["kernel_data"]
    start = int(layout.starts[region])
    k = 7
    env2, guest, cpus = guest_on_bare_link(list(range(start, start + k)))
    c = 0.010
    # A touch rate so high that every missing page is touched within the first microseconds.
    tc = _Touch(1e12, [region], [1.0])
    out: dict[str, float] = {}

    def section() -> Generator[Event, Any, None]:
        cpus.set_ctx(0, Ctx.IRQS_SOFT_OFF)
        t0 = env2.now
        yield from guest._execute(0, Ctx.IRQS_SOFT_OFF, c, tc, np.random.default_rng(0))
        out["wall"] = env2.now - t0

    env2.process(section())
    env2.run()
    assert guest.metrics.count == k
    assert out["wall"] == pytest.approx(c + k * BASE, abs=1e-9)
    assert guest.metrics.ctx_faults["irqs_soft_off"] == k
    del env


def test_waiters_spin_at_least_as_long_as_the_stalled_holder() -> None:
    env = Environment()
    lock = Spinlock(env, "zone->lock", irqsave=True)
    s = 2.5
    spins: list[float] = []

    def holder() -> Generator[Event, Any, None]:
        assert lock.acquire(0) is None
        yield env.timeout(s)  # stalled in the hypervisor while holding the lock
        lock.release(0)

    def waiter(cpu: int, at: float) -> Generator[Event, Any, None]:
        yield env.timeout(at)
        t0 = env.now
        ev = lock.acquire(cpu)
        assert ev is not None
        yield ev
        spins.append(env.now - t0)
        assert lock.holder == cpu
        yield env.timeout(1e-6)
        lock.release(cpu)

    env.process(holder())
    for cpu in range(1, 6):
        env.process(waiter(cpu, 0.0))
    env.run()
    assert len(spins) == 5
    assert min(spins) >= s
    assert lock.max_spinners == 5
    assert lock.holder is None


def test_timer_is_taken_only_after_the_stall_ends() -> None:
    """While stalled a vCPU cannot take a timer; observers learn the moment the stall ends."""
    env, guest, cpus = guest_on_bare_link([])
    region = guest.layout.index["kernel_data"]
    page = int(guest.layout.starts[region])
    env, guest, cpus = guest_on_bare_link([page])
    deliveries: list[float] = []
    due = 0.0002  # a timer expiring during the stall (which lasts BASE = 674 µs)

    def observer(cpu: int, t: float) -> None:
        if t >= due and cpus.can_take_timer(cpu) and not deliveries:
            deliveries.append(t)

    cpus.subscribe(observer)
    cpus.set_ctx(0, Ctx.KERNEL)

    def run() -> Generator[Event, Any, None]:
        yield from guest._execute(
            0, Ctx.KERNEL, 0.001, _Touch(1e12, [region], [1.0]), np.random.default_rng(0)
        )

    env.process(run())
    env.run(until=due)
    assert cpus.is_stalled(0) and not cpus.can_take_timer(0)
    env.run()
    assert deliveries == [pytest.approx(BASE, abs=1e-7)]  # the touch itself comes within nanoseconds


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    vcpus=st.integers(1, 8),
    discipline=st.sampled_from(["shared-fifo", "demand-first"]),
    preset=st.sampled_from(["oltp"]),
)
def test_invariants_of_a_whole_run(seed: int, vcpus: int, discipline: str, preset: str) -> None:
    sc = load_scenario(
        preset="small",
        overrides=[
            f"sim.seed={seed}",
            f"partition.vcpus={vcpus}",
            f"platform.discipline={discipline}",
            f"workload.preset={preset}",
            "migration.resume_missing_fraction=0.03",
            "partition.memory_gib=1",
        ],
    )
    st_ = simulate(sc)
    assert st_.cpus is not None and st_.guest is not None
    # every stall ended, nobody spins, every lock is free
    assert not any(c.stalled for c in st_.cpus.cpus)
    assert not any(c.spinning for c in st_.cpus.cpus)
    assert isinstance(st_.guest, ExactGuest)
    for lock in st_.guest.locks.values():
        assert lock.holder is None and not lock.waiters
    m = st_.recorder
    assert m.count == sum(m.ctx_faults.values())
    assert m.blocktime.sum() == pytest.approx(sum(m.ctx_stall.values()))


def test_contexts_never_overlap_and_time_runs_forward() -> None:
    sc = load_scenario(
        preset="small", overrides=["migration.resume_missing_fraction=0.03", "partition.memory_gib=1"]
    )
    seen: list[tuple[float, int, str, bool]] = []
    import lpmsim.runner as runner

    orig = runner.CpuStates

    class Watched(orig):  # type: ignore[misc, valid-type]
        def _changed(self, cpu: int) -> None:
            c = self.cpus[cpu]
            seen.append((self._now(), cpu, c.ctx.value, c.stalled))
            super()._changed(cpu)

    runner.CpuStates = Watched  # type: ignore[misc]
    try:
        simulate(sc)
    finally:
        runner.CpuStates = orig  # type: ignore[misc]
    assert seen
    per_cpu: dict[int, float] = {}
    for t, cpu, _ctx, _stalled in seen:
        assert t >= per_cpu.get(cpu, 0.0)
        per_cpu[cpu] = t


def test_deterministic_for_a_seed() -> None:
    def run() -> tuple[Any, ...]:
        st_ = simulate(load_scenario(preset="small", overrides=["migration.resume_missing_fraction=0.03"]))
        m = st_.recorder
        return (m.count, float(m.blocktime.sum()), m.max_spinners, tuple(m.ctx_faults.values()), st_.end_s)

    assert run() == run()


def test_exact_and_fluid_agree_on_guest_metrics() -> None:
    """The oltp workload on ``small`` with 5 % missing, 12 seeds.  Stated tolerances: demand faults
    within 10 %, total blocktime within 12 %, the user context's share of stall time within 0.08;
    a known deviation (docs/model/guest.md): fluid under-counts faults inside interrupts-off
    sections on this small partition."""
    res: dict[str, list[float]] = {}
    for mode in ("exact", "fluid"):
        faults, bt, user = [], [], []
        for seed in range(12):
            st_ = simulate(
                load_scenario(
                    preset="small",
                    overrides=[
                        f"sim.mode={mode}",
                        f"sim.seed={seed}",
                        "migration.resume_missing_fraction=0.05",
                    ],
                )
            )
            m = st_.recorder
            faults.append(m.count)
            bt.append(float(m.blocktime.sum()))
            tot = sum(m.ctx_stall.values())
            user.append(m.ctx_stall["user"] / tot if tot else 0.0)
        res[mode] = [float(np.mean(faults)), float(np.mean(bt)), float(np.mean(user))]
    e, f = res["exact"], res["fluid"]
    assert f[0] == pytest.approx(e[0], rel=0.10)
    assert f[1] == pytest.approx(e[1], rel=0.12)
    assert f[2] == pytest.approx(e[2], abs=0.08)


CONVOY = """
base = "small"
[migration]
resume_missing_fraction = 0.2
[[workload.locks]]
name = "hot_lock"
irqsave = true
rate_hz = 3000
hold_mean_s = 0.0005
region = "kernel_data"
touch_rate_hz = 20000
"""


@pytest.mark.parametrize("mode", ["exact"])
def test_a_stalled_lock_holder_makes_a_convoy(tmp_path, mode: str) -> None:  # type: ignore[no-untyped-def]
    """One hot irqsave lock over memory that is largely missing: holders stall on faults, and the
    other vCPUs pile up spinning behind them (with interrupts soft-disabled).  Exact mode only: in
    fluid mode on a partition this small the vCPUs are almost never free to want the lock while a
    holder is stalled (a known gap, docs/model/guest.md)."""
    f = tmp_path / "convoy.toml"
    f.write_text(CONVOY)
    st_ = simulate(load_scenario(f, overrides=[f"sim.mode={mode}"]))
    m = st_.recorder
    assert m.max_spinners >= 3
    assert m.spin.sum() > 0.05
    assert m.max_spin >= BASE

"""External interrupts hard-mask soft-masked vCPUs (lpmsim.kernel.irq_arrivals)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates, Ctx
from lpmsim.kernel.irq_arrivals import IrqArrivals


def _setup(rate: float, n: int = 1, seed: int = 7) -> tuple[Environment, CpuStates, IrqArrivals]:
    env = Environment(0.0)
    states = CpuStates(n, lambda: env.now)
    irq = IrqArrivals(env, states, rate, RngStreams(seed)["kernel/irq"])
    return env, states, irq


def test_fraction_of_sections_hard_masked_follows_the_rate() -> None:
    """Sections of 10 ms at 50/s: P(an interrupt within one) = 1 - e^-0.5 = 0.3935."""
    env, states, irq = _setup(50.0)
    n, length = 4000, 0.01
    masked = 0
    for k in range(n):
        t0 = 1.0 + k * 0.1
        env.call_at(t0, lambda: states.set_ctx(0, Ctx.IRQS_SOFT_OFF))

        def end() -> None:
            nonlocal masked
            masked += states.cpus[0].hard_dis
            states.set_ctx(0, Ctx.KERNEL)

        env.call_at(t0 + length, end)
    env.run()
    p = 1 - math.exp(-50.0 * length)
    sd = math.sqrt(p * (1 - p) / n)
    assert abs(masked / n - p) < 4 * sd
    assert irq.hard_masked == masked


def test_hard_dis_blocks_soft_nmi_until_interrupts_are_enabled() -> None:
    _env, states, irq = _setup(0.0)
    states.set_ctx(0, Ctx.IRQS_SOFT_OFF)
    assert states.soft_nmi_reachable(0)
    irq.deliver(0)
    assert states.cpus[0].hard_dis and not states.soft_nmi_reachable(0)
    assert not states.can_take_timer(0) and states.can_take_nmi(0)
    states.set_ctx(0, Ctx.IRQS_HARD_OFF)  # e.g. hard_irq_disable() inside: still hard-disabled
    states.set_ctx(0, Ctx.IRQS_SOFT_OFF)
    assert states.cpus[0].hard_dis
    states.set_ctx(0, Ctx.KERNEL)  # local_irq_enable(): replayed, MSR[EE] on
    assert not states.cpus[0].hard_dis
    states.set_ctx(0, Ctx.IRQS_SOFT_OFF)
    assert states.soft_nmi_reachable(0)


def test_interrupt_outside_soft_masked_sections_changes_nothing() -> None:
    _env, states, irq = _setup(0.0)
    states.set_ctx(0, Ctx.KERNEL)
    irq.deliver(0)
    assert not states.cpus[0].hard_dis and irq.hard_masked == 0


def test_stalled_vcpu_takes_the_interrupt_when_it_runs_again() -> None:
    _env, states, irq = _setup(0.0)
    states.set_ctx(0, Ctx.IRQS_SOFT_OFF)
    states.set_stalled(0, True)
    irq.deliver(0)
    assert not states.cpus[0].hard_dis
    states.set_stalled(0, False)
    assert states.cpus[0].hard_dis
    # pending, then the section ends while still stalled: nothing is carried over
    states.set_ctx(0, Ctx.KERNEL)
    states.set_ctx(0, Ctx.IRQS_SOFT_OFF)
    states.set_stalled(0, True)
    irq.deliver(0)
    states.set_ctx(0, Ctx.KERNEL)
    states.set_stalled(0, False)
    states.set_ctx(0, Ctx.IRQS_SOFT_OFF)
    assert not states.cpus[0].hard_dis


def test_same_seed_same_arrivals() -> None:
    def run(seed: int) -> list[float]:
        env, states, _irq = _setup(20.0, n=4, seed=seed)
        seen: list[float] = []
        states.subscribe(lambda c, t: seen.append(t) if states.cpus[c].hard_dis else None)
        for c in range(4):
            env.call_at(0.1 * c, lambda c=c: states.set_ctx(c, Ctx.IRQS_SOFT_OFF))
        env.run(until=5.0)
        return seen

    assert run(3) == run(3)
    assert run(3) != run(4)
    assert len(run(3)) == 4


def test_bad_rate_is_refused() -> None:
    env = Environment(0.0)
    states = CpuStates(1, lambda: env.now)
    with pytest.raises(ValueError):
        IrqArrivals(env, states, -1.0, np.random.default_rng(0))
    with pytest.raises(ValueError):
        IrqArrivals(env, states, 5.0, None)

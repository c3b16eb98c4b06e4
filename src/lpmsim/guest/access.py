"""Probes: the simplest touch processes, used to check the transfer model against theory.

* ``exact_vcpu`` — one vCPU touching one region at a fixed rate, stalling on each missing page:
  its faults form a Poisson process of rate r·q(t), q(t) the region's non-resident touch mass,
  drawn at the current q and thinned as pages arrive (exact because q only decreases).
* ``fluid_faults`` — the per-step fault count of the fluid guest model: run-until-fault
  (Exp(phi)) then stall-L cycles drawn one by one, then the renewal count for what is left.

The guest model (``guest.vcpu`` and ``guest.fluid``) is what a scenario runs.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from lpmsim.engine.core import Environment, Event
from lpmsim.guest.blocktime import FaultRecorder
from lpmsim.hypervisor.exact import ExactLink


def exact_vcpu(
    env: Environment,
    vcpu: int,
    link: ExactLink,
    rate_hz: float,
    rng: np.random.Generator,
    rec: FaultRecorder,
    region: int = 0,
) -> Generator[Event, object, None]:
    """A probe: one vCPU touching ``region`` at ``rate_hz`` and stalling on every missing page."""
    pages = link.pages
    if rate_hz <= 0:
        return
    while link.completed_at is None:
        link.advance(env.now)
        q0 = pages.region_missing_mass(region)
        if q0 <= 0.0:
            return
        yield env.timeout(rng.exponential(1.0 / (rate_hz * q0)))
        link.advance(env.now)
        q = pages.region_missing_mass(region)
        if rng.random() * q0 >= q:
            continue
        page = pages.sample_missing(region, rng)
        t0 = env.now
        ev = link.fault(page)
        if ev is None:
            continue
        yield ev
        rec.record(vcpu, env.now - t0)


def fluid_faults(
    free: np.ndarray, phi: float, lat: float, rng: np.random.Generator, max_rounds: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Faults per vCPU in ``free`` seconds of otherwise idle step time, and the stall carried over.

    Run-until-fault (Exp(phi)) then stall ``lat`` cycles are drawn one by one for up to
    ``max_rounds`` cycles; whatever free time is left after that is filled with the renewal count
    Poisson(phi·a / (1 + phi·lat)), which is accurate once cycles are short against the step.
    """
    n = np.zeros(free.size, dtype=np.int64)
    carry = np.zeros(free.size)
    left = free.copy()
    for _ in range(max_rounds):
        act = np.flatnonzero(left > 0)
        if act.size == 0:
            return n, carry
        t1 = rng.exponential(1.0 / phi, size=act.size)
        hit = t1 < left[act]
        miss = act[~hit]
        left[miss] = 0.0
        h = act[hit]
        n[h] += 1
        rest = left[h] - t1[hit] - lat
        over = rest < 0
        carry[h[over]] = -rest[over]
        left[h] = np.maximum(rest, 0.0)
    busy = left > 0
    if busy.any():
        k = rng.poisson(phi * left[busy] / (1.0 + phi * lat))
        n[busy] += k
        # Stall time these faults add beyond the free time they fit in carries over.
        carry[busy] += np.where(
            k > 0, np.maximum(k * lat - left[busy] * phi * lat / (1 + phi * lat), 0.0), 0.0
        )
    return n, carry

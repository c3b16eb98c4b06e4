"""Probes: the simplest touch processes, used to check the transfer model against theory.

* ``exact_vcpu`` — one vCPU touching one region at a fixed rate, stalling on each missing page:
  its faults form a Poisson process of rate r·q(t), q(t) the region's non-resident touch mass,
  drawn at the current q and thinned as pages arrive (exact because q only decreases).

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

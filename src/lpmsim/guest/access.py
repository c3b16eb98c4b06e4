"""The foundation's simple access process.

Every vCPU, while running, touches pages at ``access.touch_rate_hz``; a touch picks a region by
``touch_share`` and a page inside it by the region's Zipf skew (``hypervisor.layout``).  Only
touches of pages that are not yet on the destination matter after resume, so neither mode
simulates resident touches one by one:

* exact: faults of one vCPU form a Poisson process of rate r·q(t), q(t) the touch mass of the
  non-resident pages.  q only decreases, so candidates are drawn at the current rate and thinned
  (accepted with probability q(t_candidate)/q(t_draw)), which is exact; the page is then drawn
  among the non-resident pages by touch probability.
* fluid: all vCPUs advance together in steps of at most ``sim.fluid_step_s`` (a third of the
  current fault latency, at least an eighth of that maximum) with the fault latency L the queue
  gives at the step's start.  A vCPU free for ``a`` seconds of the step draws its
  run-until-fault (Exp(r·q)) then stall-L cycles one by one (``fluid_faults``); a stall that
  outlasts the step carries over into the next.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from lpmsim.engine.core import Environment, Event
from lpmsim.guest.blocktime import FaultRecorder
from lpmsim.hypervisor.exact import ExactLink
from lpmsim.hypervisor.fluid import FluidTransfer


def exact_vcpu(
    env: Environment, vcpu: int, link: ExactLink, rate_hz: float, rng: np.random.Generator, rec: FaultRecorder
) -> Generator[Event, object, None]:
    pages = link.pages
    if rate_hz <= 0:
        return
    while link.completed_at is None:
        link.advance(env.now)
        q0 = pages.missing_mass()
        if q0 <= 0.0:
            return
        yield env.timeout(rng.exponential(1.0 / (rate_hz * q0)))
        link.advance(env.now)
        q = pages.missing_mass()
        if rng.random() * q0 >= q:
            continue
        page = pages.sample_missing(rng)
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


def fluid_vcpus(
    env: Environment,
    transfer: FluidTransfer,
    vcpus: int,
    rate_hz: float,
    dt: float,
    rng: np.random.Generator,
    rec: FaultRecorder,
) -> Generator[Event, object, None]:
    stall_left = np.zeros(vcpus)
    max_dt = dt
    while transfer.completed_at is None:
        # The step follows the latency scale (a third of the last latency, within
        # [max_dt/8, max_dt]): a step much longer than a fault misstates the queue a fault sees.
        dt = min(max_dt, max(transfer.latency() / 3, max_dt / 8))
        # Stalled vCPUs, averaged over the step: the population a new request queues behind.
        lat = transfer.latency(outstanding=float(np.minimum(stall_left, dt).sum() / dt))
        phi = rate_hz * transfer.missing_mass()
        busy = np.minimum(stall_left, dt)
        free = dt - busy
        stall_left -= busy
        if phi > 0.0:
            n, carry = fluid_faults(free, phi, lat, rng)
            stall_left += carry
            total = int(n.sum())
            waits = transfer.split_faults(total)
            if waits:
                # Faults on pages already queued wait less: re-attribute them to random faulters.
                who = rng.multinomial(waits, n / total)
                rec.record_many(n - who, lat)
                rec.record_many(who, transfer.committed_latency(lat))
            else:
                rec.record_many(n, lat)
            transfer.request(total - waits, lat)
        transfer.step(dt)
        yield env.timeout(dt)

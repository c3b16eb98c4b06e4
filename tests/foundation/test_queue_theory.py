"""The exact link against queueing theory (brief, validation 2).

Hand computation for the ``small`` preset: a 64 KiB page is 524,288 bits; on 1 Gb/s it occupies
the link for tau = 524.288 µs.  rtt = 100 µs, fault overhead = 50 µs.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import pytest

from lpmsim.engine.core import Event
from lpmsim.guest.access import exact_vcpu
from lpmsim.guest.blocktime import FaultRecorder

from .helpers import bare_link, scenario

TAU = 524_288 / 1e9
BASE = 100e-6 + TAU + 50e-6


def test_page_time_hand_computed() -> None:
    assert scenario().page_time_s == pytest.approx(TAU, rel=1e-12)


def test_single_vcpu_no_push_latency_is_exactly_rtt_page_overhead() -> None:
    sc = scenario("platform.background_push=false", "partition.vcpus=1")
    env, link = bare_link(sc)
    rec = FaultRecorder(1)
    env.process(exact_vcpu(env, 0, link, 50.0, np.random.default_rng(3), rec))
    env.run(until=40.0)
    lat, _ = rec.latencies()
    assert lat.size > 500
    np.testing.assert_allclose(lat, BASE, rtol=0, atol=1e-12)


def _poisson_requests(rho: float, n: int, seed: int, *extra: str) -> np.ndarray:
    """Open Poisson stream of faults on distinct missing pages; returns each latency."""
    sc = scenario("platform.background_push=false", "partition.memory_gib=64", *extra)
    env, link = bare_link(sc)
    rng = np.random.default_rng(seed)
    lam = rho / sc.page_time_s
    lats = np.empty(n)

    def waiter(i: int, ev: Event) -> Generator[Event, object, None]:
        t0 = env.now
        yield ev
        lats[i] = env.now - t0

    def source() -> Generator[Event, object, None]:
        for i in range(n):
            yield env.timeout(rng.exponential(1 / lam))
            ev = link.fault(i)
            assert ev is not None
            env.process(waiter(i, ev))

    env.process(source())
    env.run()
    return lats


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9])
def test_poisson_demand_waiting_time_matches_md1(rho: float) -> None:
    """Pollaczek–Khinchine for deterministic service: W = rho·tau / (2(1 - rho))."""
    n = {0.3: 40_000, 0.6: 60_000, 0.9: 200_000}[rho]
    waits = [(_poisson_requests(rho, n, seed) - BASE)[n // 20 :].mean() for seed in (11, 12)]
    expected = rho * TAU / (2 * (1 - rho))
    assert np.mean(waits) == pytest.approx(expected, rel=0.03)


def test_shared_fifo_full_window_latency() -> None:
    """With the push running, a lone fault waits for the W queued push pages plus, on average,
    half the page on the wire: mean latency = rtt + overhead + tau + (W + 1/2)·tau."""
    w = 64
    sc = scenario(f"platform.push_window_pages={w}", "partition.vcpus=1", "partition.memory_gib=64")
    env, link = bare_link(sc)
    rec = FaultRecorder(1)
    env.process(exact_vcpu(env, 0, link, 20.0, np.random.default_rng(5), rec))
    env.run(until=40.0)
    lat, _ = rec.latencies()
    assert lat.size > 300
    expected = BASE + (w + 0.5) * TAU
    assert lat.mean() == pytest.approx(expected, rel=0.01)
    assert lat.min() >= BASE + w * TAU - 1e-12
    assert lat.max() <= BASE + (w + 1) * TAU + 1e-12


def test_demand_first_removes_the_window_term() -> None:
    sc = scenario(
        "platform.push_window_pages=64",
        "platform.discipline=demand-first",
        "partition.vcpus=1",
        "partition.memory_gib=64",
    )
    env, link = bare_link(sc)
    rec = FaultRecorder(1)
    env.process(exact_vcpu(env, 0, link, 20.0, np.random.default_rng(5), rec))
    env.run(until=40.0)
    lat, _ = rec.latencies()
    assert lat.size > 300
    assert lat.mean() == pytest.approx(BASE + 0.5 * TAU, rel=0.01)
    assert lat.max() <= BASE + TAU + 1e-12


def test_one_request_per_page_second_faulter_waits_for_the_same_page() -> None:
    sc = scenario("platform.background_push=false")
    env, link = bare_link(sc)
    got: list[float] = []

    def faulter(delay: float) -> Generator[Event, object, None]:
        yield env.timeout(delay)
        ev = link.fault(42)
        assert ev is not None
        yield ev
        got.append(env.now)

    env.process(faulter(0.0))
    env.process(faulter(20e-6))
    env.run()
    assert link.counters.requests == 1
    assert got == [pytest.approx(BASE), pytest.approx(BASE)]

"""The exact guest's block draws (``lpmsim.guest.vcpu.VcpuDraws``): each purpose has its own named
stream, its numbers come out in the order numpy draws them in blocks, and they depend only on
(seed, name)."""

from __future__ import annotations

import numpy as np
import pytest

from lpmsim.engine.rng import RngStreams
from lpmsim.guest.vcpu import BLOCK, VcpuDraws


def _direct(seed: int, name: str, draw: str, n: int, *args: float) -> list[float]:
    g = RngStreams(seed)[name]
    out: list[float] = []
    while len(out) < n:
        out.extend(getattr(g, draw)(*args, size=BLOCK).tolist())
    return out[:n]


def test_each_purpose_reads_its_own_stream_in_order_across_blocks() -> None:
    n = 2 * BLOCK + 17  # crosses two block boundaries
    d = VcpuDraws(RngStreams(7), 3, [0.5, 2.0])
    # interleaved consumption does not change what each stream gives
    u, e, g0, g1 = [], [], [], []
    for i in range(n):
        u.append(d.random())
        e.append(d.next_e())
        if i % 3 == 0:
            g1.append(d.gamma_of[1]())
        g0.append(d.gamma_of[0]())
    assert u == _direct(7, "guest/vcpu/3/uniform", "random", n)
    assert e == _direct(7, "guest/vcpu/3/exponential", "standard_exponential", n)
    assert g0 == _direct(7, "guest/vcpu/3/gamma/0", "standard_gamma", n, 0.5)
    assert g1 == _direct(7, "guest/vcpu/3/gamma/1", "standard_gamma", len(g1), 2.0)


def test_exponential_is_the_standard_one_times_the_mean() -> None:
    a = VcpuDraws(RngStreams(1), 0, [1.0])
    b = VcpuDraws(RngStreams(1), 0, [1.0])
    for _ in range(50):
        assert a.exponential(0.25) == b.standard_exponential() * 0.25


def test_same_seed_same_numbers_other_vcpu_or_seed_other_numbers() -> None:
    def first(seed: int, cpu: int) -> list[float]:
        d = VcpuDraws(RngStreams(seed), cpu, [1.0])
        return [d.random() for _ in range(8)]

    assert first(5, 2) == first(5, 2)
    assert first(5, 2) != first(5, 3)
    assert first(5, 2) != first(6, 2)


def test_the_laws_are_those_of_single_draws() -> None:
    d = VcpuDraws(RngStreams(11), 0, [4.0])
    n = 20_000
    e = np.array([d.exponential(2.0) for _ in range(n)])
    g = np.array([d.gamma_of[0]() * 0.5 for _ in range(n)])  # Gamma(shape 4, scale 0.5): mean 2, var 1
    u = np.array([d.random() for _ in range(n)])
    assert e.mean() == pytest.approx(2.0, rel=0.05)
    assert g.mean() == pytest.approx(2.0, rel=0.03)
    assert g.var() == pytest.approx(1.0, rel=0.08)
    assert u.mean() == pytest.approx(0.5, abs=0.01)
    assert u.min() >= 0.0 and u.max() < 1.0

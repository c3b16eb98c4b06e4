"""The Wilson score interval against published values and scipy, and its properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpmsim.sweeps.stats import Z95, Proportion, mean_of, median_of, wilson


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (1, 3, 0.0615, 0.7923),
        # Agresti & Coull (1998), and Newcombe (1998) table I: 81/263 -> 0.2553-0.3662
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
    ],
)
def test_known_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson(k, n)
    assert got[0] == pytest.approx(lo, abs=5e-5)
    assert got[1] == pytest.approx(hi, abs=5e-5)


def test_z_is_the_975_quantile() -> None:
    # Phi(z) = 0.975 <=> erfc(-z / sqrt 2) / 2 = 0.975
    assert math.erfc(-Z95 / math.sqrt(2)) / 2 == pytest.approx(0.975, abs=1e-15)


def test_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError):
        wilson(0, 0)
    with pytest.raises(ValueError):
        wilson(3, 2)
    with pytest.raises(ValueError):
        wilson(-1, 2)


counts = st.integers(min_value=1, max_value=10_000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


@given(counts)
def test_contains_the_estimate_and_stays_in_unit_interval(kn: tuple[int, int]) -> None:
    k, n = kn
    lo, hi = wilson(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert lo < hi


@given(counts, st.integers(min_value=2, max_value=50))
def test_narrows_as_n_grows_at_the_same_proportion(kn: tuple[int, int], m: int) -> None:
    k, n = kn
    lo1, hi1 = wilson(k, n)
    lo2, hi2 = wilson(m * k, m * n)
    assert hi2 - lo2 < hi1 - lo1


@given(counts)
def test_symmetric_in_successes_and_failures(kn: tuple[int, int]) -> None:
    k, n = kn
    lo, hi = wilson(k, n)
    lo2, hi2 = wilson(n - k, n)
    assert lo == pytest.approx(1 - hi2, abs=1e-12)
    assert hi == pytest.approx(1 - lo2, abs=1e-12)


@settings(deadline=None)
@given(counts)
def test_agrees_with_scipy(kn: tuple[int, int]) -> None:
    stats = pytest.importorskip("scipy.stats")  # a dev dependency only
    k, n = kn
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(float(ci.low), abs=1e-9)
    assert hi == pytest.approx(float(ci.high), abs=1e-9)


def test_proportion_and_gap_tolerant_means() -> None:
    assert Proportion(0, 0).as_dict() == {"k": 0, "n": 0, "p": None, "ci95_low": None, "ci95_high": None}
    d = Proportion(5, 10).as_dict()
    assert d["p"] == 0.5 and d["ci95_low"] == pytest.approx(0.2366, abs=5e-5)
    assert mean_of([1, None, 2, float("nan")]) == 1.5
    assert median_of([3.0, None, 1.0, 2.0]) == 2.0
    assert mean_of([]) is None and median_of([None]) is None

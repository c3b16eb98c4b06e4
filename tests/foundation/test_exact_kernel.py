"""The page draw's compiled cumulative sums (``hypervisor/exact_kernel.py``) give numpy's floats.

``cum_search`` is the compiled loop where numba is installed and the numpy calls where it is not
(``LPMSIM_NUMBA=0``): the two must give the same cumulative sums, bit for bit, and the same index,
for any stale point and any uniform; and a whole exact run must not depend on when
``ExactPages.sample_missing`` switches from one to the other (``COMPILED_AFTER``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpmsim.hypervisor import exact
from lpmsim.hypervisor.exact_kernel import _cum_search_loop, cum_search_np
from lpmsim.runner import run_scenario

from .helpers import scenario


def _weights(rng: np.random.Generator, n: int, zeros: float) -> np.ndarray:
    """Touch-probability-like weights (tiny, of mixed magnitudes), a share of them resident (0.0)."""
    x = rng.random(n) ** 3 / (n * rng.uniform(1.0, 1e6))
    x[rng.random(n) < zeros] = 0.0
    return x


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 5000),
    zeros=st.sampled_from([0.0, 0.3, 0.9, 1.0]),
    edge=st.sampled_from(["random", "zero", "top", "at-a-sum"]),
)
def test_the_compiled_search_gives_numpys_sums_and_index(seed: int, n: int, zeros: float, edge: str) -> None:
    rng = np.random.default_rng(seed)
    pad = int(rng.integers(0, 50))
    lo, hi = pad, pad + n
    x = np.concatenate((rng.random(pad), _weights(rng, n, zeros), rng.random(7)))
    if not x[lo:hi].sum() > 0:
        x[lo + int(rng.integers(0, n))] = 1e-9  # a block with nothing left is never sampled
    mids = sorted({lo, hi, *(int(m) for m in rng.integers(lo, hi + 1, size=3))})
    a = np.full(x.size, np.nan)
    b = np.full(x.size, np.nan)
    np.cumsum(x[lo:hi], out=a[lo:hi])  # a right prefix before each restart, as kept between draws
    b[:] = a
    for mid in mids:
        # the first entries right, the rest stale (garbage) from ``mid`` on
        a[mid:hi] = -1.0
        b[mid:hi] = -1.0
        x_before = x.copy()
        u = float(rng.random())
        if edge == "zero":
            u = 0.0
        elif edge == "top":
            u = float(np.nextafter(1.0, 0.0))
        elif edge == "at-a-sum":
            cw = np.cumsum(x[lo:hi])
            u = float(cw[int(rng.integers(0, n))] / cw[-1])
        i_np = cum_search_np(x, a, lo, mid, hi, u)
        i_jit = _cum_search_loop(x, b, lo, mid, hi, u)
        assert np.array_equal(x, x_before)  # the weights are left as they were
        assert a[lo:hi].tobytes() == b[lo:hi].tobytes()
        assert a[lo:hi].tobytes() == np.cumsum(x[lo:hi]).tobytes()
        assert i_np == i_jit
        assert 0 <= i_np < n
    assert np.isnan(a[:lo]).all() and np.isnan(a[hi:]).all()  # nothing outside [lo, hi) written


def _summary(monkeypatch: pytest.MonkeyPatch, after: int, *overrides: str) -> str:
    with monkeypatch.context() as m:
        m.setattr(exact, "COMPILED_AFTER", after)
        log: list[str] = []
        summary = run_scenario(
            scenario("sim.mode=exact", "partition.memory_gib=1", *overrides), kernel_log=log
        )
    summary.pop("wall_s")
    return json.dumps(summary, sort_keys=True) + "\n".join(log)


@pytest.mark.parametrize(
    "overrides",
    [("sim.seed=11",), ("sim.seed=12", "platform.discipline=demand-first", "workload.preset=oltp")],
)
def test_an_exact_run_does_not_depend_on_the_switch_to_the_compiled_search(
    overrides: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    numpy_only = _summary(monkeypatch, 10**12, *overrides)
    compiled_from_the_start = _summary(monkeypatch, 0, *overrides)
    switched = _summary(monkeypatch, 50, *overrides)
    assert numpy_only == compiled_from_the_start == switched
    assert '"faults_by_context"' in numpy_only

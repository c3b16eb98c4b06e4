"""The exact guest's region draw in Python floats (``small_cdf``) is numpy's, float for float.

``ExactGuest`` picks the region of a missing-page touch from the touch masses of the activity's
regions; for fewer than 8 regions it builds the cdf without numpy.  The draws stay those of the
numpy path only if every float is the same: this checks it on many random weight vectors,
including zeros and weights spanning eight orders of magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest

from lpmsim.guest.vcpu import _cdf, small_cdf


@pytest.mark.parametrize("n", range(2, 8))
def test_small_cdf_is_the_numpy_cdf(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(1000):
        w = (rng.random(n) * 10.0 ** rng.uniform(-8, 0, size=n)).tolist()
        if rng.random() < 0.2:
            w[int(rng.integers(n))] = 0.0
        wts = np.array(w)
        assert small_cdf(w) == _cdf(wts / wts.sum())


def test_numpy_sums_fewer_than_8_in_order() -> None:
    """What ``small_cdf`` relies on: numpy adds fewer than 8 doubles one after the other."""
    rng = np.random.default_rng(0)
    for n in range(1, 8):
        for _ in range(1000):
            w = (rng.random(n) * 10.0 ** rng.uniform(-8, 0, size=n)).tolist()
            acc = w[0]
            for x in w[1:]:
                acc += x
            assert float(np.array(w).sum()) == acc

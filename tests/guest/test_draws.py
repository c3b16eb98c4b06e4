"""The exact guest draws a context, a lock or a region from a cdf built once; it must draw exactly
what ``Generator.choice(n, p=p)`` draws, so that a run's results do not depend on the shortcut."""

from __future__ import annotations

import numpy as np
import pytest

from lpmsim.guest.vcpu import _cdf, _pick


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_pick_draws_what_choice_draws(seed: int) -> None:
    gen = np.random.default_rng(seed)
    for n in (1, 2, 5, 6, 9):
        w = gen.random(n) * gen.choice([1e-6, 1.0, 1e4])
        w[gen.random(n) < 0.2] = 0.0  # zero weights (a frozen context) are never drawn
        if w.sum() == 0:
            w[0] = 1.0
        p = w / w.sum()
        cdf = _cdf(p)
        a = np.random.default_rng(seed + n)
        b = np.random.default_rng(seed + n)
        got = [_pick(cdf, a) for _ in range(2000)]
        assert got == [int(b.choice(n, p=p)) for _ in range(2000)]
        assert all(p[i] > 0 for i in got)
        # both consumed the same number of raw draws
        assert a.random() == b.random()

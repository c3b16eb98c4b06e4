"""``exact`` and ``fluid`` agree on a small partition (brief, validation 3).

The ``small`` preset with 5 % of its pages missing at resume (about 3,300 pages, a few hundred to
a few thousand faults per run).  Tolerance: 5 % on the mean over 30 seeds of post-copy duration,
demand-fault count and mean fault latency, for both link disciplines.
"""

from __future__ import annotations

import numpy as np
import pytest

from lpmsim.runner import simulate

from .helpers import scenario

SEEDS = range(30)


def _means(mode: str, discipline: str) -> tuple[float, float, float]:
    post, faults, lat = [], [], []
    for seed in SEEDS:
        st_ = simulate(
            scenario(
                f"sim.mode={mode}",
                f"sim.seed={seed}",
                f"platform.discipline={discipline}",
                "migration.resume_missing_fraction=0.05",
            )
        )
        post.append(st_.end_s - st_.resume_s)
        faults.append(st_.recorder.count)
        lat.append(st_.recorder.mean())
    return float(np.mean(post)), float(np.mean(faults)), float(np.mean(lat))


@pytest.mark.parametrize("discipline", ["shared-fifo", "demand-first"])
def test_exact_and_fluid_agree(discipline: str) -> None:
    e = _means("exact", discipline)
    f = _means("fluid", discipline)
    for name, a, b in zip(("post-copy duration", "demand faults", "mean latency"), e, f, strict=True):
        assert b == pytest.approx(a, rel=0.05), f"{name}: exact {a:.6g} vs fluid {b:.6g}"

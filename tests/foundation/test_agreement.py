"""``exact`` and ``fluid`` agree on a small partition (brief, validation 3).

Transfer model (issue 2): the ``small`` preset running a single uniform region from user mode, 5 %
of its pages missing at resume (about 3,300 pages, hundreds to thousands of faults per run).
Tolerance: 5 % on the mean over 30 seeds of post-copy duration, demand-fault count and mean fault
latency, for both link disciplines.
"""

from __future__ import annotations

import numpy as np
import pytest

from lpmsim.config.loader import load_scenario
from lpmsim.runner import simulate

SEEDS = range(30)

UNIFORM = """
base = "small"
[migration]
resume_missing_fraction = 0.05
[workload]
regions = [{ name = "mem", remainder = true, write_fraction = 0.1 },
           { name = "rtas", size_gib = 0.03125, write_fraction = 0.3 }]
locks = []
[workload.contexts.user]
share = 1.0
mean_s = 0.01
touch_rate_hz = 2000
touches = { mem = 1.0 }
[workload.contexts.kernel]
share = 0.0
mean_s = 0.001
touches = {}
[workload.contexts.preempt_off]
share = 0.0
mean_s = 0.001
touches = {}
[workload.contexts.irqs_soft_off]
share = 0.0
mean_s = 0.001
touches = {}
[workload.contexts.irqs_hard_off]
share = 0.0
mean_s = 0.001
touches = {}
[workload.contexts.idle]
share = 0.0
mean_s = 0.001
touches = {}
"""


def _means(tmp_path, mode: str, discipline: str) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    f = tmp_path / "uniform.toml"
    f.write_text(UNIFORM)
    post, faults, lat = [], [], []
    for seed in SEEDS:
        sc = load_scenario(
            f, overrides=[f"sim.mode={mode}", f"sim.seed={seed}", f"platform.discipline={discipline}"]
        )
        st_ = simulate(sc)
        post.append(st_.end_s - st_.resume_s)
        faults.append(st_.recorder.count)
        lat.append(st_.recorder.mean())
    return float(np.mean(post)), float(np.mean(faults)), float(np.mean(lat))


@pytest.mark.parametrize("discipline", ["shared-fifo", "demand-first"])
def test_exact_and_fluid_agree(tmp_path, discipline: str) -> None:  # type: ignore[no-untyped-def]
    e = _means(tmp_path, "exact", discipline)
    f = _means(tmp_path, "fluid", discipline)
    for name, a, b in zip(("post-copy duration", "demand faults", "mean latency"), e, f, strict=True):
        assert b == pytest.approx(a, rel=0.05), f"{name}: exact {a:.6g} vs fluid {b:.6g}"

"""The workload presets produce the touch and write rates their documentation states.

1. ``lpmsim.guest.rates`` gives, for every preset on the ``default`` partition (64 vCPUs, 256 GiB),
   exactly the per-region figures of the table "Long-run rates per preset" in docs/model/guest.md
   (hard-coded below; keep the two in step).
2. The page-exact pre-copy reproduces those write rates: on a 64-vCPU partition with 4 GiB (the
   same vCPU count, so the same region rates) and a round of length T, the number of pages
   dirtied is a sum of independent Bernoulli(1 - exp(-λ_i T)) draws, with λ_i the stated write rate
   of page i's region times its Zipf weight within the region (its vCPU slice for per-CPU regions).
   Tolerance: 5 standard deviations of that sum, plus one page, for each of two seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lpmsim.config.loader import load_scenario, workload_names
from lpmsim.config.scenario import Scenario
from lpmsim.guest.cpustate import Ctx
from lpmsim.guest.rates import region_touch_rates, region_write_rates
from lpmsim.hypervisor.layout import Layout, region_sizes
from lpmsim.hypervisor.precopy import run_precopy

PRESETS = ("idle", "oltp", "analytics", "kernel-build", "memory-stress")
REGIONS = ("kernel_text", "kernel_data", "percpu", "rtas", "user_hot", "user_cold")

# docs/model/guest.md, table "Long-run rates per preset (64 vCPUs, 256 GiB)":
# region -> (touches/s, writes/s), all vCPUs running their normal mix, plus RTAS's own calls.
STATED: dict[str, dict[str, tuple[float, float]]] = {
    "idle": {
        "kernel_text": (5920.0, 0.0),
        "kernel_data": (7424.896, 1484.9792),
        "percpu": (5536.0, 2768.0),
        "rtas": (10.0, 3.0),
        "user_hot": (2880.0, 288.0),
        "user_cold": (0.0, 0.0),
    },
    "oltp": {
        "kernel_text": (113760.0, 0.0),
        "kernel_data": (130259.52, 26051.904),
        "percpu": (84960.0, 42480.0),
        "rtas": (10.0, 3.0),
        "user_hot": (323200.0, 80800.0),
        "user_cold": (29600.0, 1480.0),
    },
    "analytics": {
        "kernel_text": (56176.0, 0.0),
        "kernel_data": (32900.4, 6580.08),
        "percpu": (66784.0, 33392.0),
        "rtas": (10.0, 3.0),
        "user_hot": (579840.0, 289920.0),
        "user_cold": (979200.0, 979.2),
    },
    "kernel-build": {
        "kernel_text": (52723.2, 0.0),
        "kernel_data": (63719.136, 21027.31488),
        "percpu": (45312.0, 22656.0),
        "rtas": (10.0, 3.0),
        "user_hot": (379584.0, 189792.0),
        "user_cold": (25420.8, 2542.08),
    },
    "memory-stress": {
        "kernel_text": (4736.0, 0.0),
        "kernel_data": (6656.8, 1331.36),
        "percpu": (18304.0, 9152.0),
        "rtas": (10.0, 3.0),
        "user_hot": (12403584.0, 12403584.0),
        "user_cold": (0.0, 0.0),
    },
}


def _scenario(name: str, *extra: str) -> Scenario:
    return load_scenario(preset="default", overrides=[f"workload.preset={name}", *extra])


def test_every_preset_is_present_and_loads() -> None:
    assert set(PRESETS) <= set(workload_names())
    for name in PRESETS:
        w = _scenario(name).workload
        assert w.description
        assert set(w.contexts) == {c.value for c in Ctx}
        assert [r.name for r in w.regions] == list(REGIONS)
        # Segment floors (docs/model/guest.md): interrupts-off >= 20 µs, kernel >= 100 µs.
        assert w.contexts["irqs_soft_off"].mean_s >= 20e-6
        assert w.contexts["irqs_hard_off"].mean_s >= 20e-6
        assert w.contexts["kernel"].mean_s >= 100e-6


@pytest.mark.parametrize("name", PRESETS)
def test_rates_equal_the_documented_table(name: str) -> None:
    sc = _scenario(name)
    assert sc.partition.vcpus == 64 and sc.partition.memory_gib == 256
    touch = region_touch_rates(sc)
    write = region_write_rates(sc)
    assert set(touch) == set(STATED[name])
    for region, (t, w) in STATED[name].items():
        assert touch[region] == pytest.approx(t, rel=1e-6, abs=1e-9), (name, region, "touches")
        assert write[region] == pytest.approx(w, rel=1e-6, abs=1e-9), (name, region, "writes")


def _expected_dirty(sc: Scenario, stated: dict[str, tuple[float, float]], t: float) -> tuple[float, float]:
    """Mean and variance of the pages dirtied in a round of ``t`` seconds, from the stated rates."""
    ncpu = sc.partition.vcpus
    mean = 0.0
    var = 0.0
    for spec, n in zip(sc.workload.regions, region_sizes(sc), strict=True):
        rate = stated[spec.name][1]
        if spec.per_cpu and n >= ncpu:
            per = n // ncpu
            slices = [per] * (ncpu - 1) + [n - per * (ncpu - 1)]
            rate /= ncpu
        else:
            slices = [n]
        for cnt in slices:
            w = np.arange(1, cnt + 1, dtype=np.float64) ** -spec.zipf_s
            p = -np.expm1(-rate * t * w / w.sum())
            mean += float(p.sum())
            var += float((p * (1 - p)).sum())
    return mean, var


@pytest.mark.parametrize("name", PRESETS)
def test_exact_precopy_dirties_the_stated_write_rates(name: str) -> None:
    # 64 vCPUs as in the table (same rates), 4 GiB = 65,536 pages, a 1 Tb/s link: round 1 lasts
    # 65,536 x 0.524 µs = 34.4 ms; one round only, so the pages missing at resume are exactly the
    # pages written during round 1.
    sc = _scenario(
        name, "partition.memory_gib=4", "platform.link_gbps=1000", "migration.precopy_max_rounds=1"
    )
    t = sc.total_pages * sc.page_time_s
    mean, var = _expected_dirty(sc, STATED[name], t)
    tol = 5 * math.sqrt(var) + 1
    for seed in (11, 12):
        layout = Layout(sc, np.random.default_rng(seed))
        res = run_precopy(sc, layout, np.random.default_rng(seed + 1000))
        assert res.rounds == 1
        assert abs(res.missing_count - mean) <= tol, (name, seed, res.missing_count, mean, tol)

"""``exact`` and ``fluid`` agree on real workloads: ``oltp`` and ``analytics`` at 64 vCPUs (issue 12).

The measurements, the causes of the disagreements found and the model fixes are in
docs/model/agreement.md; ``benchmarks/agreement.py`` prints the same comparison with more seeds.

* Transfer (``TRANSFER``): the ``small`` preset with 64 vCPUs, 16 GiB, 25 Gb/s, ``rtt_us`` 200,
  30 % of the pages missing at resume (the issue's 64 GiB setting at a quarter of the memory, so
  that the exact runs take about 5 s each): per workload, the mean over seeds 0-3 of the mean and
  the p99 fault latency, the demand faults and the post-copy length agree within 5 %.
  Seed-to-seed spread of each metric: under 1 %, so 4 seeds resolve a 1 % difference.
* Reports (``REPORTS``): ``oltp`` with 64 vCPUs, 2 GiB, 0.03 Gb/s (latency about 2 s), 20 %
  missing, seeds 0-5: the RTAS calls after the resume stall for 20-37 s and the RCU stall
  detector reports them; the mean report count of every detector must agree within 5 % (at most
  0.2 per run where exact reports none: fluid must not invent a detector's reports).  Measured
  with ``python benchmarks/agreement.py --setting reports --workloads oltp --seeds 6 --memory-gib 2
  --set platform.link_gbps=0.03``, reports per run, exact / fluid: RCU stall 1 / 1, every other
  detector 0 / 0.  Before fix 6 (docs/model/agreement.md) fluid published an episode of user or
  kernel code as one continuous stall of K+1 latencies and an RTAS call that faults as running
  hard-disabled throughout: soft lockup 0 / 38.2, RCU stall 1 / 2.3, workqueue lockup 0 / 21.8, hard lockup 0 /
  0.33 (this test was a strict xfail until then).

Marked slow: about 100 s of CPU time in all (under 5 minutes with -n 2 on a loaded 2-core machine).
"""

from __future__ import annotations

import numpy as np
import pytest

from lpmsim.config.loader import load_scenario
from lpmsim.runner import run_scenario

TRANSFER = (
    "partition.vcpus=64",
    "partition.memory_gib=16",
    "platform.link_gbps=25",
    "platform.rtt_us=200",
    "migration.resume_missing_fraction=0.3",
)
TRANSFER_SEEDS = range(4)
REPORTS = (
    "partition.vcpus=64",
    "partition.memory_gib=2",
    "platform.link_gbps=0.03",
    "platform.rtt_us=200",
    "migration.resume_missing_fraction=0.2",
    "workload.preset=oltp",
)
REPORTS_SEEDS = range(6)
DETECTORS = ("hardlockup", "softlockup", "rcu_stall", "workqueue_lockup", "hung_task")
TOL = 0.05
NONE_ABS = 0.2  # reports per run where exact has none: at most one in the 6 runs


def _run(overrides: tuple[str, ...], mode: str, seed: int) -> dict:  # type: ignore[type-arg]
    return run_scenario(
        load_scenario(preset="small", overrides=[*overrides, f"sim.mode={mode}", f"sim.seed={seed}"])
    )


def _transfer_metrics(workload: str, mode: str) -> dict[str, float]:
    rows = []
    for seed in TRANSFER_SEEDS:
        m = _run((*TRANSFER, f"workload.preset={workload}"), mode, seed)["migration"]
        rows.append(
            (m["fault_latency_s"]["mean"], m["fault_latency_s"]["p99"], m["demand_faults"], m["postcopy_s"])
        )
    mean = np.mean(np.array(rows, dtype=float), axis=0)
    return dict(zip(("mean latency", "p99 latency", "demand faults", "post-copy length"), mean, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("workload", ["oltp", "analytics"])
def test_transfer_metrics_agree(workload: str) -> None:
    e = _transfer_metrics(workload, "exact")
    f = _transfer_metrics(workload, "fluid")
    for name, a in e.items():
        assert a > 0, name  # the setting faults: the comparison is not of zeros
        assert f[name] == pytest.approx(a, rel=TOL), (
            f"{workload} {name}: exact {a:.6g} vs fluid {f[name]:.6g}"
        )


def _report_counts(mode: str) -> dict[str, float]:
    counts = {d: 0.0 for d in DETECTORS}
    for seed in REPORTS_SEEDS:
        wd = _run(REPORTS, mode, seed)["watchdogs"]
        for d in DETECTORS:
            counts[d] += wd[d]["reports"]
    return {d: c / len(REPORTS_SEEDS) for d, c in counts.items()}


@pytest.mark.slow
def test_report_counts_agree() -> None:
    e = _report_counts("exact")
    f = _report_counts("fluid")
    assert sum(e.values()) > 0  # a setting where reports happen
    for d in DETECTORS:
        msg = f"{d}: exact {e[d]:.3g} vs fluid {f[d]:.3g} reports per run"
        if e[d] > 0:
            assert f[d] == pytest.approx(e[d], rel=TOL), msg
        else:
            assert f[d] <= NONE_ABS, msg

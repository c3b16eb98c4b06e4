"""Fluid against exact on real workloads: per metric, the mean over seeds of each mode (issue 12).

Usage::

    python benchmarks/agreement.py [--workloads oltp,analytics] [--seeds 8] [--memory-gib 64]
                                   [--setting transfer|reports] [--set FIELD=VALUE ...]
                                   [--jobs 2] [--per-seed] [--json]

Settings (the ``small`` preset with 64 vCPUs, as in ``benchmarks/run_bench.py``'s ``small-oltp``):

* ``transfer``: 25 Gb/s, ``rtt_us`` 200, 30 % missing at resume: no detector fires, the metrics
  are the transfer's (the issue's setting, at ``--memory-gib``);
* ``reports``: 1 Gb/s, 20 % missing at resume, ``sim.fluid_publish_min_s`` 0.5: post-copy lasts
  tens of seconds and episodes in interrupts-off and preempt-off code outlast the detectors'
  thresholds, so hard-lockup, soft-lockup and RCU stall reports happen.

Per workload it prints, for each metric, the mean over the seeds in ``exact`` and in ``fluid``
mode and the relative difference (fluid / exact - 1), and the CPU seconds each mode took.
Seeds are ``0 .. N-1`` for both modes (the same scenario; the two modes draw differently, so the
comparison is of means, never of single runs).  Runs go to ``--jobs`` local processes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

DETECTORS = ("hardlockup", "softlockup", "rcu_stall", "workqueue_lockup", "hung_task")
METRICS = (
    "postcopy_s",
    "demand_faults",
    "demand_requests",
    "latency_mean_ms",
    "latency_p99_ms",
    "max_irqs_off_s",
    *(f"reports_{d}" for d in DETECTORS),
)

BASE = ("partition.vcpus=64", "platform.rtt_us=200")
SETTINGS: dict[str, tuple[str, ...]] = {
    "transfer": (*BASE, "platform.link_gbps=25", "migration.resume_missing_fraction=0.3"),
    "reports": (
        *BASE,
        "platform.link_gbps=1",
        "migration.resume_missing_fraction=0.2",
    ),
}


@dataclass(frozen=True)
class RunMetrics:
    """What one run gives for the comparison."""

    workload: str
    mode: str
    seed: int
    cpu_s: float
    postcopy_s: float
    demand_faults: float
    demand_requests: float
    latency_mean_ms: float
    latency_p99_ms: float
    max_irqs_off_s: float
    reports_hardlockup: float
    reports_softlockup: float
    reports_rcu_stall: float
    reports_workqueue_lockup: float
    reports_hung_task: float


def overrides(setting: str, workload: str, memory_gib: float, extra: tuple[str, ...]) -> list[str]:
    """The ``--set`` overrides of one workload in one setting (without the mode and the seed)."""
    return [*SETTINGS[setting], f"partition.memory_gib={memory_gib:g}", f"workload.preset={workload}", *extra]


def run_one(workload: str, mode: str, seed: int, sets: list[str]) -> RunMetrics:
    """One run of ``small`` with ``sets``, in ``mode``, seed ``seed``."""
    from lpmsim.config.loader import load_scenario
    from lpmsim.runner import run_scenario

    sc = load_scenario(preset="small", overrides=[*sets, f"sim.mode={mode}", f"sim.seed={seed}"])
    t0 = time.process_time()
    s = run_scenario(sc)
    cpu = time.process_time() - t0
    m = s["migration"]
    lat = m["fault_latency_s"]
    wd = s["watchdogs"]
    return RunMetrics(
        workload=workload,
        mode=mode,
        seed=seed,
        cpu_s=cpu,
        postcopy_s=float(m["postcopy_s"]),
        demand_faults=float(m["demand_faults"]),
        demand_requests=float(m["demand_requests"]),
        latency_mean_ms=float(lat["mean"]) * 1e3,
        latency_p99_ms=float(lat["p99"]) * 1e3,
        max_irqs_off_s=float(s["guest"]["max_irqs_off_s"]),
        reports_hardlockup=float(wd["hardlockup"]["reports"]),
        reports_softlockup=float(wd["softlockup"]["reports"]),
        reports_rcu_stall=float(wd["rcu_stall"]["reports"]),
        reports_workqueue_lockup=float(wd["workqueue_lockup"]["reports"]),
        reports_hung_task=float(wd["hung_task"]["reports"]),
    )


def _star(args: tuple[str, str, int, list[str]]) -> RunMetrics:
    return run_one(*args)


def run_all(
    workloads: list[str], seeds: int, setting: str, memory_gib: float, extra: tuple[str, ...], jobs: int
) -> list[RunMetrics]:
    """Every (workload, mode, seed) run, exact runs first (the longest), in a stable order."""
    tasks = [
        (w, mode, seed, overrides(setting, w, memory_gib, extra))
        for mode in ("exact", "fluid")
        for w in workloads
        for seed in range(seeds)
    ]
    if jobs <= 1:
        return [_star(t) for t in tasks]
    with ProcessPoolExecutor(jobs) as ex:
        return list(ex.map(_star, tasks))


def _mean(rows: list[RunMetrics], mode: str, workload: str, metric: str) -> float:
    vals = [float(getattr(r, metric)) for r in rows if r.mode == mode and r.workload == workload]
    return sum(vals) / len(vals) if vals else float("nan")


def table(rows: list[RunMetrics], workloads: list[str], per_seed: bool) -> str:
    out: list[str] = []
    for w in workloads:
        out.append(f"== {w}")
        out.append(f"{'metric':<26}{'exact':>12}{'fluid':>12}{'fluid/exact-1':>15}")
        for metric in (*METRICS, "cpu_s"):
            e, f = _mean(rows, "exact", w, metric), _mean(rows, "fluid", w, metric)
            rel = f"{(f / e - 1) * 100:+.1f} %" if e else ("=" if f == e else "n/a")
            out.append(f"{metric:<26}{e:>12.5g}{f:>12.5g}{rel:>15}")
        if per_seed:
            for mode in ("exact", "fluid"):
                for r in rows:
                    if r.workload == w and r.mode == mode:
                        vals = " ".join(f"{getattr(r, m):.5g}" for m in METRICS)
                        out.append(f"  {mode} seed {r.seed}: {vals}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="oltp,analytics")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--memory-gib", type=float, default=64.0)
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="transfer")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--per-seed", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if a.seeds < 1 or a.jobs < 1:
        print("agreement.py: --seeds and --jobs must be at least 1", file=sys.stderr)
        return 2
    workloads = [w.strip() for w in a.workloads.split(",") if w.strip()]
    rows = run_all(workloads, a.seeds, a.setting, a.memory_gib, tuple(a.set), a.jobs)
    if a.json:
        doc: dict[str, Any] = {
            "setting": a.setting,
            "overrides": {w: overrides(a.setting, w, a.memory_gib, tuple(a.set)) for w in workloads},
            "runs": [asdict(r) for r in rows],
        }
        print(json.dumps(doc, indent=1))
    else:
        print(
            f"setting {a.setting}, seeds 0..{a.seeds - 1}, {a.memory_gib:g} GiB; extra: {' '.join(a.set) or '-'}"
        )
        print(table(rows, workloads, a.per_seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

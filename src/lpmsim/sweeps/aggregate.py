"""The figures of a set of runs (a variant, or a variant at one axis point) from their rows.

Every figure is order-free, so it does not depend on the executor or the order runs finished.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lpmsim.kernel.model import DETECTORS
from lpmsim.sweeps.rows import OUTCOMES
from lpmsim.sweeps.stats import Proportion, mean_of, median_of

DEFINITIONS: dict[str, str] = {
    "runs": "runs of the variant that finished, with or without an error",
    "ok": "runs that ran to the end (whatever the partition's outcome)",
    "failed": "runs that stopped with an error (listed under failures); not counted in any figure",
    "outcomes": "number of ok runs per outcome: survived, panic (a *_panic sysctl), crash (unrecoverable)",
    "p_crash": "P(outcome = crash) over ok runs: k of n, p = k/n, 95 % Wilson score interval",
    "p_panic": "P(outcome = panic) over ok runs: k of n, p = k/n, 95 % Wilson score interval",
    "reports_mean": "mean number of reports per ok run, per detector",
    "reports_migration_mean": "the same, reports the simulator attributes to migration latency "
    "(None when the summaries have no such split)",
    "reports_bug_mean": "the same, reports of injected kernel bugs (None without the split)",
    "hv_stall_annotations_mean": "mean 'memory access stalled N s in the hypervisor' lines per ok run "
    "(the annotate policy; 0 otherwise)",
    "nmi_ipi_mean": "mean NMI IPIs sent / not answered within 1 s / unrecoverable, per ok run",
    "bugs_detected": "injected bugs detected by any detector over all ok runs: k of n injected, "
    "with its 95 % Wilson interval (p None when no bug was injected)",
    "detection_delay_median_s": "median, over every detected bug of every ok run, of the time from the "
    "bug's start to its first report",
    "fault_latency_p99_s_median": "median over ok runs of each run's p99 demand-fault latency",
    "blocktime_per_vcpu_p99_s_median": "median over ok runs of each run's p99 (over vCPUs) of the "
    "time a vCPU spent blocked on demand faults",
    "postcopy_s_mean": "mean post-copy duration (resume to transfer complete, or to the end of the run)",
    "throughput_loss_frac_mean": "mean fraction of the workload's throughput lost after resume",
    "demand_faults_mean": "mean number of demand faults per run",
    "wall_s_mean": "mean wall-clock time of a run (the only figure that depends on the machine)",
}


def _col(rows: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    return [r.get(name) for r in rows]


def _split_mean(rows: Sequence[Mapping[str, Any]], cause: str) -> dict[str, float | None] | None:
    out = {d: mean_of(_col(rows, f"reports_{cause}_{d}")) for d in DETECTORS}
    return out if any(v is not None for v in out.values()) else None


def aggregate_variant(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The figures of one variant from its rows (any order: every statistic is order-free)."""
    ok = [r for r in rows if r.get("ok")]
    n = len(ok)
    outcomes = {o: sum(1 for r in ok if r.get("outcome") == o) for o in OUTCOMES}
    injected = sum(int(r.get("bugs_injected") or 0) for r in ok)
    detected = sum(int(r.get("bugs_detected") or 0) for r in ok)
    delays = [d for r in ok for d in (r.get("detection_delays_s") or ())]
    return {
        "runs": len(rows),
        "ok": n,
        "failed": len(rows) - n,
        "outcomes": outcomes,
        "p_crash": Proportion(outcomes["crash"], n).as_dict(),
        "p_panic": Proportion(outcomes["panic"], n).as_dict(),
        "reports_mean": {d: mean_of(_col(ok, f"reports_{d}")) for d in DETECTORS},
        "reports_migration_mean": _split_mean(ok, "migration"),
        "reports_bug_mean": _split_mean(ok, "bug"),
        "hv_stall_annotations_mean": mean_of(_col(ok, "hv_stall_annotations")),
        "nmi_ipi_mean": {
            k: mean_of(_col(ok, f"nmi_ipi_{k}")) for k in ("sent", "timed_out", "unrecoverable")
        },
        "bugs_detected": Proportion(detected, injected).as_dict(),
        "detection_delay_median_s": median_of(delays),
        "fault_latency_p99_s_median": median_of(_col(ok, "fault_latency_p99_s")),
        "blocktime_per_vcpu_p99_s_median": median_of(_col(ok, "blocktime_per_vcpu_p99_s")),
        "postcopy_s_mean": mean_of(_col(ok, "postcopy_s")),
        "throughput_loss_frac_mean": mean_of(_col(ok, "throughput_loss_frac")),
        "demand_faults_mean": mean_of(_col(ok, "demand_faults")),
        "wall_s_mean": mean_of(_col(rows, "wall_s")),
    }


def aggregate(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant (in order of first appearance), the figures of ``aggregate_variant``."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by.setdefault(str(r["variant"]), []).append(r)
    return {name: aggregate_variant(rs) for name, rs in by.items()}

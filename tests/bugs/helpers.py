"""Shared helpers: a static (non-migrating) partition with the kernel defaults, and runs of it."""

from __future__ import annotations

import copy
from typing import Any

from lpmsim.config.loader import build_scenario
from lpmsim.runner import simulate, summarise

# 8 vCPUs, not migrating: only the kernel model runs (runner._simulate_static), to sim.max_time_s.
STATIC: dict[str, Any] = {
    "partition": {"vcpus": 8, "memory_gib": 4},
    "migration": {"enabled": False},
    "sim": {"max_time_s": 130, "mode": "exact"},
}
# No external interrupts: a soft-masked bug stays reachable by the soft-NMI (the hand computations
# of the soft-NMI rule); lpmsim.kernel.irq_arrivals, test_detection.py's hard-masked case.
NO_IRQS = {"irq_rate_hz": 0}
# No system reset lands with MSR[RI]=0: the NMI IPI to a spinning CPU never crashes the partition.
NO_RI0 = {"nmi_ri0_prob": {"kernel": 0, "preempt_off": 0, "irqs_soft_off": 0, "irqs_hard_off": 0, "rtas": 0}}


def static_data(bugs: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    data = copy.deepcopy(STATIC)
    data["bugs"] = bugs
    for key, val in over.items():
        if isinstance(val, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **val}
        else:
            data[key] = val
    return data


def run_static(bugs: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    """The summary of a static run with ``bugs`` (``over`` merged into the sections)."""
    return summarise(simulate(build_scenario(static_data(bugs, **over))), 0.0)

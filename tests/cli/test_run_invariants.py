"""Output invariants over random small scenarios (issue 11, section 3): every fraction and
probability in the summary lies in [0, 1], every time and count is non-negative, quantiles are
ordered and the migration's phases add up.  Small fluid-mode partitions keep each run well under a
second; the seeds and shapes are Hypothesis's."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpmsim.config.loader import load_scenario
from lpmsim.runner import run_scenario


def _leaves(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, node


def _is_fraction(path: str) -> bool:
    last = path.rsplit(".", 1)[-1]
    return last.endswith(("_frac", "_fraction")) or last in ("p", "probability")


def check_invariants(s: dict[str, Any]) -> None:
    for path, v in _leaves({k: v for k, v in s.items() if k != "scenario"}):
        if isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        assert isinstance(v, int | float), path
        assert math.isfinite(v), path
        if _is_fraction(path):
            assert 0.0 <= v <= 1.0, (path, v)
        elif not path.startswith("events["):
            assert v >= 0, (path, v)  # times, counts, sizes
    m = s["migration"]
    if m.get("enabled") and m.get("resumed"):
        assert math.isclose(m["total_s"], m["precopy_s"] + m["blackout_s"] + m["postcopy_s"], rel_tol=1e-9)
        fl = m["fault_latency_s"]
        assert fl["p50"] <= fl["p99"] <= fl["max"]
        assert m["blocktime_s"]["per_vcpu_max"] <= m["blocktime_s"]["total"] + 1e-9
        # no vCPU is blocked, or runs with interrupts off, longer than the post-copy lasted
        assert m["blocktime_s"]["per_vcpu_max"] <= m["postcopy_s"] + 1e-9
        assert s["guest"]["blocktime_per_vcpu_s"]["max"] <= m["postcopy_s"] + 1e-9
        assert s["guest"]["max_irqs_off_s"] <= m["postcopy_s"] + 1e-9
        assert m["pages_missing_at_resume"] <= m["pages_total"]
        g = s["guest"]
        pv = g["blocktime_per_vcpu_s"]
        assert pv["p50"] <= pv["p90"] <= pv["p99"] <= pv["max"]
        assert sum(pv["histogram"]["vcpus"]) == s["scenario"]["partition"]["vcpus"]
    for w in s["watchdogs"].values():
        if "reports" in w and w["reports"] == 0:
            assert w["cpus"] == [] and w["first_s"] is None
        if "sent" in w:
            assert w["timed_out"] <= w["sent"]
    for e in s.get("events", []):
        assert 0 <= e["time_s"] <= s["scenario"]["sim"]["max_time_s"] + 1e-6
    assert s["outcome"] in ("survived", "panic", "crash")
    assert (s["crash"] is None) == (s["outcome"] == "survived")


scenarios = st.fixed_dictionaries(
    {
        "partition.vcpus": st.integers(1, 8),
        "partition.memory_gib": st.sampled_from([0.125, 0.25, 0.5]),
        "platform.link_gbps": st.sampled_from([0.05, 0.2, 1.0, 5.0]),
        "platform.discipline": st.sampled_from(["shared-fifo", "demand-first"]),
        "platform.prefetch_pages": st.sampled_from([0, 4]),
        "migration.resume_missing_fraction": st.sampled_from([0.05, 0.3, 0.9]),
        "workload.preset": st.sampled_from(["oltp", "analytics", "kernel-build", "memory-stress", "idle"]),
        "kernel.version": st.sampled_from(["pre-v6.0", "v6.0", "v6.6"]),
        "mitigation.policy": st.sampled_from(
            ["kernel", "none", "nmi-factor:200", "disable-nmi", "inhibit-all"]
        ),
        "sim.max_time_s": st.sampled_from([5.0, 30.0, 90.0]),
        "sim.seed": st.integers(0, 2**16),
    }
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(scenarios)
def test_outputs_stay_in_range(values: dict[str, Any]) -> None:
    overrides = [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in values.items()]
    overrides = [o.replace("'", '"') for o in overrides]
    sc = load_scenario(preset="small", overrides=[*overrides, "sim.mode=fluid"])
    check_invariants(run_scenario(sc))

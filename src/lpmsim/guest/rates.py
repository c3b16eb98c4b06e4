"""Long-run rates implied by a workload: touches and writes per region, time per context.

These are the figures a workload's documentation states and the presets' tests check: with every
vCPU running its normal mix, how many distinct-page touches and writes per second land in each
region.  Pre-copy dirtying (``hypervisor.precopy``) uses them; the guest model's simulated touches
must reproduce them.
"""

from __future__ import annotations

from lpmsim.config.scenario import Scenario
from lpmsim.guest.workload import Workload

KERNEL_CONTEXTS = ("kernel", "preempt_off", "irqs_soft_off")


def normalised(weights: dict[str, float]) -> dict[str, float]:
    tot = sum(weights.values())
    return {k: v / tot for k, v in weights.items()} if tot > 0 else {}


def kernel_share(w: Workload) -> float:
    return sum(w.contexts[c].share for c in KERNEL_CONTEXTS)


def lock_hold_share(w: Workload) -> dict[str, float]:
    """CPU seconds spent holding each lock per CPU second of running."""
    ks = kernel_share(w)
    return {lk.name: ks * lk.rate_hz * lk.hold_mean_s for lk in w.locks}


def per_vcpu_touch_rates(w: Workload) -> dict[str, float]:
    """Touches per second one running vCPU makes in each region."""
    out = {r.name: 0.0 for r in w.regions}
    for ctx in w.contexts.values():
        for reg, frac in normalised(ctx.touches).items():
            out[reg] += ctx.share * ctx.touch_rate_hz * frac * w.touch_scale
    holds = lock_hold_share(w)
    for lk in w.locks:
        out[lk.region] += holds[lk.name] * lk.touch_rate_hz * w.touch_scale
    return out


def region_touch_rates(scenario: Scenario) -> dict[str, float]:
    """Touches per second into each region with every vCPU running (plus RTAS's own)."""
    w = scenario.workload
    n = scenario.partition.vcpus
    out = {k: v * n for k, v in per_vcpu_touch_rates(w).items()}
    out[w.rtas.region] += w.rtas.calls_hz * w.rtas.call_mean_s * w.rtas.touch_rate_hz * w.touch_scale
    return out


def region_write_rates(scenario: Scenario) -> dict[str, float]:
    rates = region_touch_rates(scenario)
    return {r.name: rates[r.name] * r.write_fraction for r in scenario.workload.regions}

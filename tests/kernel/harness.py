"""Run a scripted kernel case: a scenario dict (not migrating, or a tiny migration) plus optional
direct calls of kernel entry points at given times (rcu_cpu_stall_reset, touch_nmi_watchdog,
the LPM factor, an external interrupt to a CPU)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lpmsim.config.loader import build_scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates
from lpmsim.kernel.model import KernelRun
from lpmsim.runner import simulate, summarise

# No external interrupts unless a case asks for them (workload.irq_rate_hz, or an "irq" call):
# a soft-masked section then stays reachable by the soft-NMI for its whole length, as the hand
# computations assume (lpmsim.kernel.irq_arrivals; cases_masking.py covers the hard-masking).
NO_IRQS: dict[str, Any] = {"irq_rate_hz": 0}

BASE: dict[str, Any] = {
    "partition": {"vcpus": 8, "memory_gib": 4},
    "workload": NO_IRQS,
    "migration": {"enabled": False},
    "sim": {"max_time_s": 200, "mode": "exact"},
}

# A tiny migration: SUSPENDING at ~0.24 s, seen by the poll after ssleep(1) at t=1.04 (101 jiffies
# rounded up to the timer wheel's 8-jiffy level); blackout 0.25 s -> resumed at 1.29; post-copy done
# at ~1.2906 (0.25 GiB at 10 Gb/s, fluid).
MIGRATION: dict[str, Any] = {
    "partition": {"vcpus": 4, "memory_gib": 0.25},
    "workload": NO_IRQS,
    "platform": {"link_gbps": 10.0},
    "migration": {"enabled": True},
    "sim": {"max_time_s": 400, "mode": "fluid"},
}


@dataclass
class Result:
    summary: dict[str, Any]
    lines: list[str]  # log lines without the timestamp prefix

    def events(self, detectors: set[str] | None = None) -> list[dict[str, Any]]:
        evs = self.summary["events"]
        if detectors is None:
            return list(evs)
        return [e for e in evs if e["detector"] in detectors]


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _strip(lines: list[str]) -> list[str]:
    return [ln.split("] ", 1)[1] for ln in lines]


def run_case(data: dict[str, Any], calls: Sequence[tuple[Any, ...]] = ()) -> Result:
    sc = build_scenario(data)
    if not calls:
        st = simulate(sc)
        summary = summarise(st, 0.0)
        lines = st.kernel.model.log.lines() if st.kernel is not None else []
        return Result(summary, _strip(lines))
    # not migrating, with direct kernel calls: the runner's static path plus the calls
    assert not sc.migration.enabled
    streams = RngStreams(sc.sim.seed)
    env = Environment(0.0)
    cpus = CpuStates(sc.partition.vcpus, lambda: env.now)
    kr = KernelRun(env, cpus, sc.kernel, sc.script, streams["kernel/nmi"])
    m = kr.model
    for call in calls:
        t, name, *args = call
        if name == "rcu_cpu_stall_reset":
            env.call_at(t, lambda t=t: m.rcu_cpu_stall_reset(t))
        elif name == "touch_nmi_watchdog":
            env.call_at(t, lambda t=t, c=args[0]: m.touch_nmi_watchdog(c, t))
        elif name == "irq":  # one must-hard-mask interrupt (an external interrupt) to CPU args[0]
            env.call_at(t, lambda c=args[0]: kr.irq.deliver(c))
        elif name == "factor":
            env.call_at(t, lambda t=t, p=args[0]: m.set_lpm_factor(t, p, "T4242"))
        else:
            raise ValueError(name)
    while not m.dead and env.peek() <= sc.sim.max_time_s:
        env.step()
    summary = {**kr.summary()}
    return Result(summary, _strip(m.log.lines()))

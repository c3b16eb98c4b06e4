"""Run one scenario: pre-copy, blackout, post-copy, and the summary.

Times in the summary are simulated seconds from the start of the migration (VASI ``enabled``).
The summary is a plain dict so that it serialises to the same bytes for the same scenario and
seed in any process; only ``wall_s`` differs between runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lpmsim import __version__
from lpmsim.config.scenario import Scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.access import exact_vcpu, fluid_vcpus
from lpmsim.guest.blocktime import FaultRecorder
from lpmsim.hypervisor.exact import ExactLink, ExactPages, LinkCounters
from lpmsim.hypervisor.fluid import FluidTransfer
from lpmsim.hypervisor.layout import Layout
from lpmsim.hypervisor.precopy import PrecopyResult, run_precopy

Progress = Callable[[float, float], None]
"""Called with (simulated time now, simulated time limit)."""


class RunState:
    """What a finished run leaves behind, for the summary and for tests."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.precopy: PrecopyResult | None = None
        self.resume_s = 0.0
        self.completed_s: float | None = None
        self.end_s = 0.0
        self.recorder = FaultRecorder(scenario.partition.vcpus)
        self.counters = LinkCounters()
        self.link: ExactLink | None = None
        self.fluid: FluidTransfer | None = None
        self.events = 0


def simulate(scenario: Scenario, progress: Progress | None = None, trace: bool = False) -> RunState:
    sc = scenario
    st = RunState(sc)
    streams = RngStreams(sc.sim.seed)
    if not sc.migration.enabled:
        st.end_s = sc.sim.max_time_s
        return st
    layout = Layout(sc, streams["layout"])
    pre = run_precopy(sc, layout, streams["precopy"])
    st.precopy = pre
    st.resume_s = pre.duration_s + sc.migration.blackout_s
    limit = sc.sim.max_time_s
    env = Environment(st.resume_s)
    rate = sc.access.touch_rate_hz
    n = sc.partition.vcpus
    if sc.sim.mode == "exact":
        assert pre.missing_pages is not None
        missing = pre.missing_pages
        touch = layout.page_touch_prob
        order = np.flatnonzero(missing)
        if sc.platform.push_order == "hottest-first":
            order = order[np.argsort(-touch[order], kind="stable")]
        link = ExactLink(env, ExactPages(touch, missing), order, sc, trace=trace)
        st.link = link
        st.counters = link.counters
        for i in range(n):
            env.process(
                exact_vcpu(env, i, link, rate, streams[f"access/vcpu/{i}"], st.recorder), name=f"vcpu{i}"
            )

        def done() -> float | None:
            return link.completed_at
    else:
        assert pre.missing_buckets is not None
        fl = FluidTransfer(sc, layout.buckets, pre.missing_buckets, streams["fluid/link"], st.resume_s)
        st.fluid = fl
        st.counters = fl.counters
        env.process(fluid_vcpus(env, fl, n, rate, sc.sim.fluid_step_s, streams["fluid/vcpus"], st.recorder))

        def done() -> float | None:
            return fl.completed_at

    tick = 0
    while done() is None and env.peek() <= limit:
        env.step()
        tick += 1
        if progress is not None and tick % 2048 == 0:
            progress(env.now, limit)
    st.events = env.events_processed
    st.completed_s = done()
    if st.completed_s is not None and st.completed_s > limit:
        st.completed_s = None
    st.end_s = st.completed_s if st.completed_s is not None else limit
    if progress is not None:
        progress(st.end_s, limit)
    return st


def _f(x: float) -> float:
    return float(x)


def summarise(st: RunState, wall_s: float) -> dict[str, Any]:
    sc = st.scenario
    rec = st.recorder
    c = st.counters
    mig: dict[str, Any] = {"enabled": sc.migration.enabled}
    if st.precopy is not None:
        pre = st.precopy
        post = st.end_s - st.resume_s
        mig.update(
            completed=st.completed_s is not None,
            precopy_s=_f(pre.duration_s),
            precopy_rounds=pre.rounds,
            precopy_stop_reason=pre.stop_reason,
            precopy_pages_sent=pre.pages_sent,
            blackout_s=_f(sc.migration.blackout_s),
            postcopy_s=_f(post),
            total_s=_f(st.end_s),
            vasi={
                "enabled_s": 0.0,
                "suspending_s": _f(pre.duration_s),
                "suspended_s": _f(pre.duration_s),
                "resumed_s": _f(st.resume_s),
                "completed_s": None if st.completed_s is None else _f(st.completed_s),
            },
            pages_total=sc.total_pages,
            pages_missing_at_resume=pre.missing_count,
            missing_fraction_at_resume=_f(pre.missing_count / sc.total_pages),
            demand_faults=rec.count,
            demand_requests=c.requests,
            pages_pushed=c.pushed,
            pages_demanded=c.demanded,
            pages_prefetched=c.prefetched,
            link_busy_frac=_f((c.pushed + c.demanded + c.prefetched) * sc.page_time_s / post)
            if post > 0
            else 0.0,
            fault_latency_s={
                "mean": _f(rec.mean()),
                "p50": _f(rec.quantile(0.50)),
                "p99": _f(rec.quantile(0.99)),
                "max": _f(rec.max()),
            },
            blocktime_s={
                "total": _f(rec.blocktime.sum()),
                "per_vcpu_max": _f(rec.blocktime.max()),
                "per_vcpu_mean": _f(rec.blocktime.mean()),
                "per_vcpu_p50": _f(np.quantile(rec.blocktime, 0.5)),
                "per_vcpu_p99": _f(np.quantile(rec.blocktime, 0.99)),
            },
        )
    return {
        "lpmsim_version": __version__,
        "seed": sc.sim.seed,
        "scenario": sc.model_dump(mode="json"),
        "migration": mig,
        "sim": {"mode": sc.sim.mode, "events": st.events},
        "wall_s": wall_s,
    }


def run_scenario(scenario: Scenario, progress: Progress | None = None) -> dict[str, Any]:
    """Simulate ``scenario`` and return its summary (the content of ``summary.json``)."""
    t0 = time.perf_counter()
    st = simulate(scenario, progress)
    return summarise(st, time.perf_counter() - t0)

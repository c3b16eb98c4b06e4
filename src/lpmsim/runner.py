"""Run one scenario: pre-copy, blackout, post-copy, and the summary.

Times in the summary are simulated seconds from the start of the migration (VASI ``enabled``).
The summary is a plain dict so that it serialises to the same bytes for the same scenario and
seed in any process; only ``wall_s`` differs between runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from lpmsim import __version__
from lpmsim.bugs.attribution import attribute
from lpmsim.bugs.inject import BugInjector
from lpmsim.config.scenario import Scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates
from lpmsim.guest.fluid import FluidGuest
from lpmsim.guest.metrics import GuestMetrics
from lpmsim.guest.vcpu import ExactGuest
from lpmsim.hypervisor.exact import ExactLink, LinkCounters
from lpmsim.hypervisor.fluid import FluidTransfer
from lpmsim.hypervisor.layout import Layout
from lpmsim.hypervisor.migration import Migration
from lpmsim.hypervisor.precopy import PrecopyResult
from lpmsim.hypervisor.topology import cpu_nodes
from lpmsim.kernel.model import DTL_MODES, KernelModel, KernelRun
from lpmsim.policies.mechanisms import Policy, build_policy

if TYPE_CHECKING:
    from lpmsim.outputs.trace import TraceRecorder

Progress = Callable[[float, float], None]
"""Called with (simulated time now, simulated time the run stops at: ``sim.max_time_s``, or
earlier once the migration is over and the kernel's tail is known)."""


class RunState:
    """What a finished run leaves behind, for the summary and for tests."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.migration: Migration | None = None
        self.precopy: PrecopyResult | None = None
        self.resume_s = 0.0
        self.completed_s: float | None = None
        self.end_s = 0.0
        self.recorder = GuestMetrics(scenario.partition.vcpus)
        self.cpus: CpuStates | None = None
        self.guest: ExactGuest | FluidGuest | None = None
        self.counters = LinkCounters()
        self.link: ExactLink | None = None
        self.fluid: FluidTransfer | None = None
        self.kernel: KernelRun | None = None
        self.bugs: BugInjector | None = None
        self.events = 0


def _cpu_nodes(sc: Scenario) -> tuple[int, ...]:
    """``cpu_to_node()`` of every vCPU from the partition's topology (lpmsim.hypervisor.topology)."""
    p = sc.partition
    return cpu_nodes(p.vcpus, p.smt, p.numa_nodes)


def _start_guest(mig: Migration, guest: ExactGuest | FluidGuest) -> None:
    """At resume the guest model starts running (before it, the source serves every touch)."""
    if isinstance(guest, ExactGuest):
        assert mig.link is not None
        guest.start(mig.link)
    else:
        assert mig.fluid is not None
        guest.start(mig.fluid)


def simulate(
    scenario: Scenario,
    progress: Progress | None = None,
    trace: bool = False,
    tracer: TraceRecorder | None = None,
) -> RunState:
    """``trace``: the exact link keeps every page it sent (tests); ``tracer``: record the run's
    event trace (``lpmsim run --trace``, ``lpmsim.outputs.trace``)."""
    sc = scenario
    st = RunState(sc)
    if tracer is not None:
        st.recorder = tracer.metrics
    streams = RngStreams(sc.sim.seed)
    limit = sc.sim.max_time_s
    if not sc.migration.enabled:
        st.end_s = limit
        if sc.script or sc.bugs:
            _simulate_static(st, streams, progress, tracer)
        return st
    env = Environment(0.0)
    layout = Layout(sc, streams["layout"])
    mig = Migration(env, sc, layout, streams, trace=trace)
    st.migration = mig
    cpus = CpuStates(sc.partition.vcpus, lambda: env.now)
    st.cpus = cpus
    if tracer is not None:
        tracer.attach_cpus(cpus)
    guest: ExactGuest | FluidGuest
    if sc.sim.mode == "exact":
        guest = ExactGuest(env, sc, layout, cpus, streams, st.recorder)
    else:
        guest = FluidGuest(env, sc, layout, cpus, streams, st.recorder)
        st.recorder.records_start_now(lambda: env.now)  # fluid records a stall as it starts
    st.guest = guest
    env.process(mig.run(), name="migration")
    # The kernel model's mobility flow (stop_machine, H_JOIN, ibm,suspend-me) suspends the guest.
    spec = sc.mitigation.spec
    recorder = st.recorder

    def policy(m: KernelModel, mg: Migration) -> Policy:
        return build_policy(spec, m, mg, lambda: recorder.max_stall)

    kernel = KernelRun(
        env,
        cpus,
        sc.kernel,
        sc.script,
        streams["kernel/nmi"],
        mig,
        guest,
        policy,
        irq_rate_hz=sc.workload.irq_rate_hz,
        irq_rng=streams["kernel/irq"],
    )
    st.kernel = kernel
    kernel.model.set_topology(_cpu_nodes(sc), sc.partition.smt)
    if tracer is not None:
        tracer.attach_kernel(kernel.model.hooks.in_rtas, mig, sc.page_time_s)
    mig.resumed.add_callback(lambda _e: _start_guest(mig, guest))
    # Injected kernel bugs (ground truth): times from t=0 or from the resume.
    bugs = BugInjector(kernel, sc.bugs, streams, guest, mig.resumed) if sc.bugs else None
    st.bugs = bugs

    # Run until the LPM flow is over and the transfer complete, plus kernel.tail_s (or a panic).
    stop = [limit]
    if isinstance(guest, FluidGuest):
        guest.horizon = stop  # its batched steps stop where the run does

    def _update_stop(_e: object) -> None:
        stop[0] = kernel.stop_time(limit, mig.completed_at)
        if bugs is not None:  # each bug due gets its detection horizon
            stop[0] = bugs.stop_time(stop[0], limit)

    if bugs is not None:
        bugs.on_start = lambda: _update_stop(None)

    mig.completed.add_callback(_update_stop)
    assert kernel.mobility is not None
    kernel.mobility.done.add_callback(_update_stop)
    fluid = guest if isinstance(guest, FluidGuest) else None
    show = None if progress is None else (lambda: progress(env.now, _horizon(mig, kernel, stop[0], env.now)))
    _run_events(env, kernel.model, stop, _per_work(show, 256, fluid), 1, tracer)
    st.events = env.events_processed
    st.precopy = mig.precopy
    st.link, st.fluid, st.counters = mig.link, mig.fluid, mig.counters
    st.resume_s = mig.resume_s if mig.resume_s is not None else limit
    st.completed_s = mig.completed_at
    if st.completed_s is not None and st.completed_s > limit:
        st.completed_s = None
    if st.completed_s is not None:
        st.end_s = st.completed_s
    else:
        st.end_s = min(env.now, limit) if kernel.model.dead else limit
    if progress is not None:
        progress(st.end_s, limit)
    return st


def _horizon(mig: Migration, kernel: KernelRun, stop: float, now: float) -> float:
    """For the progress display: when the run will likely stop.  During post-copy, the pages not
    yet sent at one per page time, plus the kernel's tail; otherwise the current stop time."""
    if mig.resume_s is None or mig.completed_at is not None:
        return stop
    if mig.fluid is not None:
        left = mig.fluid.missing_total + mig.fluid.backlog
    elif mig.link is not None:
        left = mig.link.pages.uncommitted
    else:
        return stop
    return max(now, min(stop, now + left * mig.scenario.page_time_s + kernel.model.cfg.tail_s))


def _simulate_static(
    st: RunState, streams: RngStreams, progress: Progress | None, tracer: TraceRecorder | None
) -> None:
    """A partition that is not migrating: the kernel model driven by the scenario's script."""
    sc = st.scenario
    limit = sc.sim.max_time_s
    env = Environment(0.0)
    cpus = CpuStates(sc.partition.vcpus, lambda: env.now)
    st.cpus = cpus
    if tracer is not None:
        tracer.attach_cpus(cpus)
    kernel = KernelRun(
        env,
        cpus,
        sc.kernel,
        sc.script,
        streams["kernel/nmi"],
        irq_rate_hz=sc.workload.irq_rate_hz,
        irq_rng=streams["kernel/irq"],
    )
    kernel.model.set_topology(_cpu_nodes(sc), sc.partition.smt)
    if tracer is not None:
        tracer.attach_kernel(kernel.model.hooks.in_rtas, None, sc.page_time_s)
    for part in sc.mitigation.spec.parts:  # steal-aware / annotate act without a migration too
        if part.name in DTL_MODES:
            kernel.model.enable_dtl(part.name)
    st.kernel = kernel
    if sc.bugs:  # not migrating: bug times count from t=0 whatever their `after`
        st.bugs = BugInjector(kernel, sc.bugs, streams)
    show = None if progress is None else (lambda: progress(env.now, limit))
    _run_events(env, kernel.model, [limit], show, 2048, tracer)
    st.events = env.events_processed


def _per_work(
    show: Callable[[], None] | None, every: int, fluid: FluidGuest | None
) -> Callable[[], None] | None:
    """``show`` after every ``every`` units of work, called once per event: the work is the events
    and the fluid steps a batch runs inside one event (``FluidGuest.batched_steps``)."""
    if show is None:
        return None
    seen = [0, 0]  # events, work buckets shown

    def per_event() -> None:
        seen[0] += 1
        bucket = (seen[0] + (fluid.batched_steps if fluid is not None else 0)) // every
        if bucket != seen[1]:
            seen[1] = bucket
            show()

    return per_event


def _run_events(
    env: Environment,
    model: KernelModel,
    stop: list[float],
    show: Callable[[], None] | None,
    every: int,
    tracer: TraceRecorder | None,
) -> None:
    """Process events until the kernel dies or the next one is past ``stop[0]``.  A tracer samples
    between events, so with one the loop that ``Environment.run_bounded`` inlines runs as it is."""
    if tracer is None:
        env.run_bounded(stop, model, show, every)
        return
    tick = 0
    while not model.dead and env.peek() <= stop[0]:
        tracer.before_step(env.now, env.peek())
        env.step()
        tick += 1
        if show is not None and tick % every == 0:
            show()


def _f(x: float) -> float:
    return float(x)


def summarise(st: RunState, wall_s: float) -> dict[str, Any]:
    sc = st.scenario
    rec = st.recorder
    # The guest's window ends with the run: a fluid step in progress when it stopped (a crash) is
    # counted only up to the stop.
    rec.window_end = st.end_s if rec.window_end is None else min(rec.window_end, st.end_s)
    c = st.counters
    mig: dict[str, Any] = {"enabled": sc.migration.enabled}
    if st.precopy is not None:
        pre = st.precopy
        post = st.end_s - st.resume_s
        bt = rec.blocktime_in_window()
        suspended = st.migration.times["suspended_s"] if st.migration is not None else None
        mig.update(
            completed=st.completed_s is not None,
            # on the source until the guest suspended: the pre-copy rounds, then the kernel's
            # mobility flow noticing SUSPENDING (1 s polls) and joining (suspend_wait_s)
            precopy_s=_f(suspended if suspended is not None else pre.duration_s),
            precopy_rounds_s=_f(pre.duration_s),
            suspend_wait_s=None if suspended is None else _f(suspended - pre.duration_s),
            precopy_rounds=pre.rounds,
            precopy_stop_reason=pre.stop_reason,
            precopy_pages_sent=pre.pages_sent,
            blackout_s=_f(sc.migration.blackout_s),
            postcopy_s=_f(post),
            total_s=_f(st.end_s),
            vasi={k: (None if v is None else _f(v)) for k, v in st.migration.times.items()}
            if st.migration is not None
            else {},
            pages_total=sc.total_pages,
            pages_missing_at_resume=pre.missing_count,
            missing_fraction_at_resume=_f(pre.missing_count / sc.total_pages),
            demand_faults=rec.count,
            demand_requests=c.requests,
            pages_pushed=c.pushed,
            pages_demanded=c.demanded,
            pages_prefetched=c.prefetched,
            # link busy time inside the window resume..end: the pages of the last fluid step or in
            # flight when the run stopped are counted whole, which cannot make the link busier
            # than the window is long
            link_busy_frac=_f(min((c.pushed + c.demanded + c.prefetched) * sc.page_time_s, post) / post)
            if post > 0
            else 0.0,
            fault_latency_s={
                "mean": _f(rec.mean()),
                "p50": _f(rec.quantile(0.50)),
                "p99": _f(rec.quantile(0.99)),
                "max": _f(rec.max()),
            },
            blocktime_s={
                "total": _f(bt.sum()),
                "per_vcpu_max": _f(bt.max()),
                "per_vcpu_mean": _f(bt.mean()),
                "per_vcpu_p50": _f(np.quantile(bt, 0.5)),
                "per_vcpu_p99": _f(np.quantile(bt, 0.99)),
            },
        )
    if st.precopy is not None and st.migration is not None and st.migration.resume_s is None:
        # The run ended (sim.max_time_s, a panic) before the partition resumed on the destination:
        # nothing is missing yet and no post-copy happened; pre-copy lasted until the end.
        mig.update(
            resumed=False,
            precopy_s=_f(st.end_s),
            postcopy_s=0.0,
            pages_missing_at_resume=None,
            missing_fraction_at_resume=None,
        )
    elif st.precopy is not None:
        mig["resumed"] = True
    return {
        "lpmsim_version": __version__,
        "seed": sc.sim.seed,
        "scenario": sc.model_dump(mode="json"),
        "migration": mig,
        "guest": rec.summary(sc.partition.vcpus) if st.precopy is not None else None,
        "sim": {"mode": sc.sim.mode, "events": st.events},
        **_kernel_summary(st),
        "wall_s": wall_s,
    }


def _kernel_summary(st: RunState) -> dict[str, Any]:
    """outcome, crash, watchdogs, events (and the LPM flow's times) from the kernel model; the
    injected bugs' detection (``bugs``) and the reports split by cause (``reports``)."""
    out = st.kernel.summary() if st.kernel is not None else KernelRun.empty_summary()
    # ground truth: each event's cause, each injected bug's detection (lpmsim.bugs.attribution)
    records = st.bugs.records() if st.bugs is not None else []
    out.update(attribute(out["events"], records, out["crash"]))
    return out


def run_scenario(
    scenario: Scenario,
    progress: Progress | None = None,
    kernel_log: list[str] | None = None,
    tracer: TraceRecorder | None = None,
) -> dict[str, Any]:
    """Simulate ``scenario`` and return its summary (the content of ``summary.json``).

    ``kernel_log``, if given, receives the kernel log's lines (the content of ``dmesg.log``);
    ``tracer``, if given, records the run's trace (``TraceRecorder.build(summary)`` after).
    """
    t0 = time.perf_counter()
    st = simulate(scenario, progress, tracer=tracer)
    if tracer is not None:
        tracer.finish(st.end_s, st.kernel.model.log.records if st.kernel is not None else [])
    summary = summarise(st, time.perf_counter() - t0)
    if kernel_log is not None and st.kernel is not None:
        kernel_log.extend(st.kernel.model.log.lines())
    return summary

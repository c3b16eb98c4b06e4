"""One migration as the hypervisor runs it: the VASI stream's states over simulated time.

``Migration.run`` is a process of the discrete-event core, started at t = 0 (the first pre-copy
round):

    ENABLED ──precopy_s──► SUSPENDING ──guest joins──► SUSPENDED ──blackout_s──► RESUMED ──► COMPLETED

* Pre-copy is computed by ``precopy.run_precopy`` (its rounds are closed-form per page or bucket),
  and the stream turns SUSPENDING when the stop rule fires.
* The guest must then suspend itself (pseries: stop_machine, H_JOIN, ibm,suspend-me; the kernel
  model does that).  It signals with ``guest_suspend()``.  Without a kernel model the runner
  suspends at once.
* After the blackout the partition runs on the destination (RESUMED) while the post-copy
  transfer (``exact.ExactLink`` or ``fluid.FluidTransfer``) moves the rest; COMPLETED when the
  last page has arrived.

Other parts observe it through ``state`` (what H_VASI_STATE would return now), the events
``suspending``, ``resumed`` and ``completed``, and ``times``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np

from lpmsim.config.scenario import Scenario
from lpmsim.engine.core import Environment, Event
from lpmsim.engine.rng import RngStreams
from lpmsim.hypervisor.exact import ExactLink, ExactPages, LinkCounters
from lpmsim.hypervisor.fluid import FluidTransfer
from lpmsim.hypervisor.layout import Layout
from lpmsim.hypervisor.precopy import PrecopyResult, run_precopy
from lpmsim.hypervisor.vasi import VasiState


class Migration:
    def __init__(
        self, env: Environment, scenario: Scenario, layout: Layout, streams: RngStreams, trace: bool = False
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.layout = layout
        self.streams = streams
        self.trace = trace
        self.state = VasiState.ENABLED
        self.precopy: PrecopyResult | None = None
        self.link: ExactLink | None = None
        self.fluid: FluidTransfer | None = None
        self.counters = LinkCounters()
        self.suspending = env.event()
        self.resumed = env.event()
        self.completed = env.event()
        self._guest_suspended = env.event()
        self.times: dict[str, float | None] = {
            "enabled_s": env.now,
            "suspending_s": None,
            "suspended_s": None,
            "resumed_s": None,
            "completed_s": None,
        }

    # -- what the guest sees / does --------------------------------------------------------------
    def guest_suspend(self) -> None:
        """The guest has joined and called ibm,suspend-me: the blackout starts now."""
        if not self._guest_suspended.triggered:
            self._guest_suspended.succeed()

    @property
    def completed_at(self) -> float | None:
        return self.times["completed_s"]

    @property
    def resume_s(self) -> float | None:
        return self.times["resumed_s"]

    # -- the process -------------------------------------------------------------------------------
    def run(self) -> Generator[Event, Any, None]:
        env, sc = self.env, self.scenario
        pre = run_precopy(sc, self.layout, self.streams["precopy"])
        self.precopy = pre
        yield env.timeout(pre.duration_s)
        self.state = VasiState.SUSPENDING
        self.times["suspending_s"] = env.now
        self.suspending.succeed()
        yield self._guest_suspended
        self.state = VasiState.SUSPENDED
        self.times["suspended_s"] = env.now
        yield env.timeout(sc.migration.blackout_s)
        self.state = VasiState.RESUMED
        self.times["resumed_s"] = env.now
        done = self._start_postcopy(pre)
        self.resumed.succeed()
        yield done
        self.state = VasiState.COMPLETED
        self.times["completed_s"] = self._completion_time()
        self.completed.succeed()

    def _start_postcopy(self, pre: PrecopyResult) -> Event:
        env, sc = self.env, self.scenario
        if sc.sim.mode == "exact":
            assert pre.missing_pages is not None
            missing = pre.missing_pages
            touch = self.layout.page_touch_prob
            order = np.flatnonzero(missing)
            if sc.platform.push_order == "hottest-first":
                order = order[np.argsort(-touch[order], kind="stable")]
            pages = ExactPages(touch, missing, self.layout.starts, self.layout.counts)
            self.link = ExactLink(env, pages, order, sc, trace=self.trace)
            self.counters = self.link.counters
            return self.link.completed
        assert pre.missing_buckets is not None
        self.fluid = FluidTransfer(
            sc,
            self.layout.buckets,
            pre.missing_buckets,
            self.streams["fluid/link"],
            env.now,
            env,
            shared=np.array([not r.per_cpu for r in sc.workload.regions]),
        )
        self.counters = self.fluid.counters
        return self.fluid.completed

    def _completion_time(self) -> float:
        if self.link is not None:
            assert self.link.completed_at is not None
            return self.link.completed_at
        assert self.fluid is not None and self.fluid.completed_at is not None
        return self.fluid.completed_at

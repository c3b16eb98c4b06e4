"""Shared guest-model fixtures."""

from __future__ import annotations

import numpy as np

from lpmsim.config.loader import load_scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates
from lpmsim.guest.metrics import GuestMetrics
from lpmsim.guest.vcpu import ExactGuest
from lpmsim.hypervisor.exact import ExactLink, ExactPages
from lpmsim.hypervisor.layout import Layout


def guest_on_bare_link(missing_pages: list[int], vcpus: int = 1) -> tuple[Environment, ExactGuest, CpuStates]:
    """An exact guest whose link has no push, over the ``small`` preset's layout with only
    ``missing_pages`` missing."""
    sc = load_scenario(
        preset="small", overrides=["platform.background_push=false", f"partition.vcpus={vcpus}"]
    )
    env = Environment()
    streams = RngStreams(1)
    layout = Layout(sc, streams["layout"])
    miss = np.zeros(sc.total_pages, dtype=bool)
    miss[missing_pages] = True
    pages = ExactPages(layout.page_touch_prob, miss, layout.starts, layout.counts)
    link = ExactLink(env, pages, np.flatnonzero(miss), sc)
    cpus = CpuStates(vcpus, lambda: env.now)
    guest = ExactGuest(env, sc, layout, cpus, streams, GuestMetrics(vcpus))
    guest.link = link
    return env, guest, cpus

"""Builders shared by the foundation tests: a bare link driven by hand."""

from __future__ import annotations

import numpy as np

from lpmsim.config.loader import load_scenario
from lpmsim.config.scenario import Scenario
from lpmsim.engine.core import Environment
from lpmsim.hypervisor.exact import ExactLink, ExactPages


def scenario(*overrides: str, preset: str = "small") -> Scenario:
    return load_scenario(preset=preset, overrides=overrides)


def bare_link(
    sc: Scenario, missing: np.ndarray | None = None, trace: bool = False
) -> tuple[Environment, ExactLink]:
    """A link over ``sc.total_pages`` uniformly touched pages, all missing unless ``missing`` says."""
    n = sc.total_pages
    miss = np.ones(n, dtype=bool) if missing is None else missing
    env = Environment()
    pages = ExactPages(np.full(n, 1.0 / n), miss, np.array([0]), np.array([n]))
    link = ExactLink(env, pages, np.flatnonzero(miss), sc, trace=trace)
    return env, link

"""Simulate functions for the comparison tests: top-level, so that spawned workers can unpickle them."""

from __future__ import annotations

from typing import Any

from lpmsim.config.scenario import Scenario
from lpmsim.runner import run_scenario

FAILING_SEED = 2


def fail_on_seed_2(sc: Scenario) -> dict[str, Any]:
    """The real run, except that seed 2 raises the way a bug in the simulator would."""
    if sc.sim.seed == FAILING_SEED:
        raise RuntimeError(f"injected failure\nfor seed {sc.sim.seed}")
    return run_scenario(sc)

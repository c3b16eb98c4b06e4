"""Simulate functions for the comparison tests: top-level, so that spawned workers can unpickle them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from lpmsim.config.scenario import Scenario
from lpmsim.runner import run_scenario

FAILING_SEED = 2


def fail_on_seed_2(sc: Scenario) -> dict[str, Any]:
    """The real run, except that seed 2 raises the way a bug in the simulator would."""
    if sc.sim.seed == FAILING_SEED:
        raise RuntimeError(f"injected failure\nfor seed {sc.sim.seed}")
    return run_scenario(sc)


DEADLY_SEED = 3
"""The seed whose run kills the process running it (a worker that dies, e.g. out of memory)."""


def die_on_seed_3(sc: Scenario) -> dict[str, Any]:
    """The real run, except that seed 3 kills its own process with SIGKILL."""
    if sc.sim.seed == DEADLY_SEED:
        os.kill(os.getpid(), signal.SIGKILL)
    return run_scenario(sc)


SLOW_SEED = 2
MARK_DIR_ENV = "LPMSIM_TEST_MARK_DIR"


def slow_on_seed_2(sc: Scenario) -> dict[str, Any]:
    """The real run; seed 2 first leaves ``started-PID`` in $LPMSIM_TEST_MARK_DIR and waits 3 s, so
    that a test can kill the worker process running it."""
    if sc.sim.seed == SLOW_SEED:
        mark = Path(os.environ[MARK_DIR_ENV]) / f"started-{os.getpid()}"
        mark.write_text(str(os.getpid()))
        time.sleep(3.0)
    return run_scenario(sc)

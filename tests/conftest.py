"""The test session's set-up: the compiled fluid kernels are in numba's cache before the workers start.

With an empty cache (a fresh clone, or after a change of the kernels' source) every process that
runs a fluid simulation first compiles the kernels (``lpmsim.guest.fluid_kernel``: ~15 s of CPU):
each pytest-xdist worker, and each ``lpmsim`` subprocess a test starts before one of them has
written the cache, at the same time on the same cores.  So the controller compiles them once,
in a subprocess running the ``default`` preset (the fluid step, the transfer's kernels with the
signatures a run uses), before it starts the workers (``pytest_configure`` runs before xdist's
``pytest_sessionstart`` brings the workers up); the workers and their subprocesses then load the
cache.  With the cache already filled it costs the subprocess's start-up and cache load (~1 s).
Only under xdist (``-n 2``, as ``scripts/test`` runs): a single process compiles once anyway.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

WARM_UP = """
from lpmsim.guest.fluid_draws import HAVE_NUMBA
if HAVE_NUMBA:
    from lpmsim.config.loader import load_scenario
    from lpmsim.guest.fluid import FluidGuest
    from lpmsim.runner import simulate

    st = simulate(load_scenario(preset="default"))
    assert isinstance(st.guest, FluidGuest) and st.guest.transfer is not None
    st.guest.transfer.region_missing_mass()  # the transfer's kernel a test calls from Python
"""
"""What the controller runs: the ``default`` preset in fluid mode compiles (or loads) every kernel
a fluid run calls, with the argument types a run gives them."""


def pytest_configure(config: pytest.Config) -> None:
    """In the xdist controller, before the workers start: fill numba's cache (module docstring)."""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller did it
        return
    if not config.getoption("numprocesses", None) or config.option.collectonly:
        return
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WARM_UP], capture_output=True, text=True, check=False)
    if done.returncode != 0:  # the tests that run the kernels will show why; say it once here
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        sys.stderr.write(f"conftest: compiling the fluid kernels failed: {tail[0]}\n")
    elif time.perf_counter() - t0 > 5.0:
        sys.stderr.write(
            f"conftest: compiled the fluid kernels into numba's cache ({time.perf_counter() - t0:.0f} s)\n"
        )

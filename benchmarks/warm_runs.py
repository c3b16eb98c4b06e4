"""Warm runs of a case over seeds, in one process (docs/performance.md, "Round 7").

Usage::

    python benchmarks/warm_runs.py CASE [FIRST_SEED [LAST_SEED]]   # e.g. stress 2 6

In this fresh process: one ``simulate()`` of the case at seed ``FIRST_SEED - 1`` (numba's start-up,
not counted), then one per seed from ``FIRST_SEED`` to ``LAST_SEED`` (default 2 to 6), each timed in
CPU seconds (``time.process_time()``, what a ``compare`` worker spends on a run), with its events and
fluid batches (calls of ``fluid_kernel.fluid_batch``: ``FluidGuest.steps - batched_steps``).  The
last line: the median and the sum.  Run it with ``PYTHONPATH=OTHER/src`` first to time another
tree the same way.  A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import statistics
import sys
import time


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(__doc__ or "")
        return 0 if argv else 2
    from lpmsim.config.loader import load_scenario
    from lpmsim.guest.fluid import FluidGuest
    from lpmsim.runner import simulate
    from run_bench import CASES

    if argv[0] not in CASES:
        sys.stderr.write(f"error: unknown case {argv[0]!r} (known: {', '.join(CASES)})\n")
        return 2
    try:
        first = int(argv[1]) if len(argv) > 1 else 2
        last = int(argv[2]) if len(argv) > 2 else max(first, 6)
    except ValueError:
        sys.stderr.write("error: seeds must be integers\n")
        return 2
    case = CASES[argv[0]]

    def scenario(seed: int) -> object:
        return load_scenario(
            preset=case.preset, overrides=[*case.overrides, f"sim.mode={case.mode}", f"sim.seed={seed}"]
        )

    simulate(scenario(first - 1))  # type: ignore[arg-type]
    times = []
    for seed in range(first, last + 1):
        sc = scenario(seed)
        c0 = time.process_time()
        st = simulate(sc)  # type: ignore[arg-type]
        cpu = time.process_time() - c0
        times.append(cpu)
        g = st.guest
        batches = g.steps - g.batched_steps if isinstance(g, FluidGuest) else 0
        sys.stdout.write(f"{case.name} seed {seed}: {cpu:.3f} s CPU, events {st.events}, batches {batches}\n")
    sys.stdout.write(f"{case.name}: median {statistics.median(times):.3f} s, sum {sum(times):.3f} s CPU\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

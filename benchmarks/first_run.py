"""A process's first run against its next ones (docs/performance.md, "Round 6").

Usage::

    python benchmarks/first_run.py CASE [RUNS]      # a case of run_bench.py, e.g. small-oltp, stress

In this fresh process: the CPU seconds (``time.process_time()``) of importing ``lpmsim.runner``,
then of ``RUNS`` (default 2) ``simulate()`` calls of the case, one after the other.  The first
run holds numba's start-up (its import, loading the cached kernels); the next ones do not.  A
measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import sys
import time


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(__doc__ or "")
        return 0 if argv else 2
    c0 = time.process_time()
    import lpmsim.runner  # noqa: F401  (timed: the model's imports)
    from lpmsim.config.loader import load_scenario
    from lpmsim.runner import simulate

    c1 = time.process_time()
    from run_bench import CASES

    if argv[0] not in CASES:
        sys.stderr.write(f"error: unknown case {argv[0]!r} (known: {', '.join(CASES)})\n")
        return 2
    case = CASES[argv[0]]
    runs = int(argv[1]) if len(argv) > 1 else 2
    sc = load_scenario(preset=case.preset, overrides=[*case.overrides, f"sim.mode={case.mode}"])
    out = [f"{case.name}: imports {c1 - c0:.2f} s"]
    for i in range(runs):
        a = time.process_time()
        simulate(sc)
        out.append(f"run {i + 1} {time.process_time() - a:.2f} s")
    sys.stdout.write(", ".join(out) + " (CPU)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""How long a Monte Carlo comparison of policies takes (``lpmsim compare``'s engine).

The brief's target: "a Monte Carlo comparison of a dozen policies with hundreds of runs each is a
coffee break".  This runs ``--variants`` policies x ``--runs`` seeds of a preset with ``--jobs``
processes and prints the wall time, runs per second and the time a dozen policies x 200 runs
would take at that rate.

    .venv/bin/python benchmarks/compare_bench.py [--preset default] [--runs 8] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import time

from lpmsim.config.loader import resolve_scenario
from lpmsim.sweeps.compare import compare

POLICIES = (
    "none",
    "kernel",
    "nmi-factor:200",
    "disable-nmi",
    "inhibit-all",
    "freeze-user:dt-update",
    "freeze-user:completed",
    "steal-aware",
    "annotate",
    "adaptive-factor",
    "guard:nmi-factor:200",
    "nmi-factor:200+freeze-user:completed",
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--variants", type=int, default=len(POLICIES), help="how many of the 12 policies")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="FIELD=VALUE")
    args = ap.parse_args()
    base = resolve_scenario(preset=args.preset, overrides=args.sets)
    variants = [f"v{i}={p}" for i, p in enumerate(POLICIES[: args.variants])]
    t0 = time.perf_counter()
    res = compare(base, variants, args.runs, jobs=args.jobs)
    wall = time.perf_counter() - t0
    n = len(res.results)
    rate = n / wall
    sim_wall = sum(r.row.get("wall_s") or 0.0 for r in res.results) / max(n, 1)
    print(f"preset {args.preset}: {len(variants)} policies x {args.runs} runs = {n} runs, {args.jobs} jobs")
    print(f"  wall {wall:.1f} s, {rate:.2f} runs/s, mean simulation {sim_wall:.2f} s per run")
    print(f"  failed runs: {len(res.failures)}")
    print(f"  12 policies x 200 runs at this rate: {12 * 200 / rate / 60:.1f} min")


if __name__ == "__main__":
    main()

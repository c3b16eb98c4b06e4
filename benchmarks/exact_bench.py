"""Speed of the page-exact (event-driven) mode (issue 12, the ``exact`` row).

Usage::

    python benchmarks/exact_bench.py [--cases default,default-explicit,small] [--repeat N]
                                     [--seed S] [--json]

Cases (each an ``lpmsim run`` scenario in ``exact`` mode):

* ``default``: the ``default`` preset with ``sim.mode=exact``;
* ``default-explicit``: the same partition spelled out, so that the figure does not move if the
  ``default`` preset changes: 64 vCPUs, 256 GiB, 10 Gb/s, ``shared-fifo``, push window 256 pages;
* ``small``: the ``small`` preset (8 vCPUs, 4 GiB, 1 Gb/s; exact already).

Each (case, repetition) runs in a fresh Python subprocess (this script re-invoked with
``--child``), so that the peak resident set size is that run's alone (``os.wait4``'s
``ru_maxrss`` of the child). Figures per case:

* ``wall s``: the simulation's own wall time (``wall_s`` of the summary), median over repetitions;
* ``cpu s``: CPU time of the child process over the same span (``time.process_time``), median:
  on a shared machine this moves less with the load than the wall time does;
* ``peak RSS MB``: the largest ``ru_maxrss`` of the child over the repetitions, in MiB;
* ``events``: events processed by the discrete-event core (``sim.events``);
* ``events/s``: events / median wall s;
* ``digest``: the first 12 hex digits of SHA-256 of ``summary.json``'s bytes without ``wall_s``,
  plus the kernel log's: equal digests before and after a change mean bit-identical results.

No timing assertion is made anywhere: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CASES: dict[str, tuple[str, list[str]]] = {
    "default": ("default", ["sim.mode=exact"]),
    "default-explicit": (
        "default",
        [
            "sim.mode=exact",
            "partition.vcpus=64",
            "partition.memory_gib=256",
            "platform.link_gbps=10.0",
            "platform.discipline=shared-fifo",
            "platform.push_window_pages=256",
        ],
    ),
    "small": ("small", ["sim.mode=exact"]),
}


def _child(case: str, seed: int) -> int:
    """Run one simulation; print wall s, events and the digest as one JSON line."""
    from lpmsim.config.loader import load_scenario
    from lpmsim.runner import run_scenario

    preset, overrides = CASES[case]
    scenario = load_scenario(preset=preset, overrides=[*overrides, f"sim.seed={seed}"])
    log: list[str] = []
    c0 = time.process_time()
    summary = run_scenario(scenario, kernel_log=log)
    cpu = time.process_time() - c0
    wall = float(summary.pop("wall_s"))
    h = hashlib.sha256(json.dumps(summary, sort_keys=True).encode())
    h.update("\n".join(log).encode())
    out = {
        "wall_s": wall,
        "cpu_s": cpu,
        "events": int(summary["sim"]["events"]),
        "postcopy_s": float(summary["migration"].get("postcopy_s", 0.0)),
        "digest": h.hexdigest()[:12],
    }
    print(json.dumps(out))
    return 0


def _run_child(case: str, seed: int) -> tuple[dict[str, Any], float]:
    """Returns (the child's figures, its peak RSS in MiB)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", case, "--seed", str(seed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    _pid, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{case}: child exited with {code}")
    # ru_maxrss is in KiB on Linux.
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--cases", default="default-explicit,small")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.child, args.seed)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in cases if c not in CASES]
    if bad:
        print(f"--cases: unknown {', '.join(bad)} (known: {', '.join(CASES)})", file=sys.stderr)
        return 2
    if args.repeat < 1:
        print("--repeat: must be at least 1", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    for case in cases:
        walls: list[float] = []
        cpus: list[float] = []
        rss = 0.0
        fig: dict[str, Any] = {}
        digests: set[str] = set()
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            fig, mb = _run_child(case, args.seed)
            walls.append(float(fig["wall_s"]))
            cpus.append(float(fig["cpu_s"]))
            rss = max(rss, mb)
            digests.add(str(fig["digest"]))
        wall = statistics.median(walls)
        rows.append(
            {
                "case": case,
                "seed": args.seed,
                "wall_s": wall,
                "walls": walls,
                "cpu_s": statistics.median(cpus),
                "cpus": cpus,
                "peak_rss_mb": rss,
                "events": int(fig["events"]),
                "events_per_s": fig["events"] / wall if wall > 0 else 0.0,
                "postcopy_s": float(fig["postcopy_s"]),
                "digest": ",".join(sorted(digests)),
                "bench_s": time.perf_counter() - t0,
            }
        )
        if not args.json:
            r = rows[-1]
            runs = " ".join(f"{w:.2f}" for w in walls)
            print(
                f"{case:18s} wall {wall:8.2f} s (runs {runs})  cpu {r['cpu_s']:8.2f} s  peak RSS {rss:6.0f} MB  "
                f"events {r['events']:>10,}  events/s {r['events_per_s']:>10,.0f}  "
                f"post-copy {r['postcopy_s']:.2f} s  digest {r['digest']}",
                flush=True,
            )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

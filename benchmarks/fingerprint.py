"""Digests of a set of scenarios, to prove a speed change leaves every result bit-identical.

Usage::

    python benchmarks/fingerprint.py [--only NAME,NAME] [--jobs N]

Per scenario it prints the first 16 hex digits of SHA-256 of ``summary.json`` without ``wall_s``
and ``sim.events`` (the event count may drop when a change saves events), plus the kernel log
(``dmesg.log``'s lines). Run it before and after a change: equal lines mean equal results;
``--check`` compares with ``EXPECTED``, the digests of the current code. The
scenarios cover the fluid and the exact mode, the validation stress setting, an injected bug, a
``freeze-user`` and a ``steal-aware`` mitigation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from run_bench import SMALL_OLTP
from run_bench import STRESS as BENCH_STRESS  # the issue-12 settings, defined once

STRESS = ["sim.mode=fluid", *BENCH_STRESS]
SMALL_SLOW = ["platform.link_gbps=0.2"]
SCENARIOS: dict[str, tuple[str, list[str]]] = {
    "stress": ("lpm-2022", STRESS),
    "stress-256-bug": (
        "lpm-2022",
        [
            *STRESS[:3],
            "partition.vcpus=256",
            "partition.memory_gib=128",
            *STRESS[5:],
            'bugs=[{kind="irqs_hard_off_spin", at_s=10}]',
        ],
    ),
    "default": ("default", []),
    "default-bug": ("default", ['bugs=[{kind="irqs_hard_off_spin", at_s=30}]']),
    "small-exact": ("small", []),
    "small-oltp": ("small", ["sim.mode=fluid", *SMALL_OLTP]),
    "small-oltp-hot": (
        "small",
        [
            "sim.mode=fluid",
            *(o for o in SMALL_OLTP if not o.startswith("workload.preset=")),
            "workload.preset=analytics",
            "platform.push_order=hottest-first",
        ],
    ),
    "small-freeze": ("small", [*SMALL_SLOW, "mitigation.policy=freeze-user:completed"]),
    "small-steal": ("small", [*SMALL_SLOW, "mitigation.policy=steal-aware"]),
    "small-fluid-freeze": (
        "small",
        ["sim.mode=fluid", *SMALL_SLOW, "mitigation.policy=freeze-user:completed"],
    ),
    "small-fluid-steal": ("small", ["sim.mode=fluid", *SMALL_SLOW, "mitigation.policy=steal-aware"]),
}


EXPECTED: dict[str, str] = {
    "stress": "d388e94ef0081332",
    "stress-256-bug": "ce04aa33a61066af",
    "default": "07a0c22f24e1e31b",
    "default-bug": "d21d8f6d7a9a8102",
    "small-exact": "cb5e50832c8f5ad6",
    "small-oltp": "fcd37c197d1b27f9",
    "small-oltp-hot": "187ac4449f2d8b55",
    "small-freeze": "3ece9813663cdde9",
    "small-steal": "54b9983cdfccd500",
    "small-fluid-freeze": "1f32c36291e50bd4",
    "small-fluid-steal": "97e596dc84b17ea9",
}
"""The digests of the current code (``--check`` compares): filled in docs/performance.md's
"Round 3: the compiled fluid step"; last changed by issue 13's kernel timing (``ssleep(1)`` /
``msleep(500)`` on the timer wheel: the suspend moves to the poll at 1.04 s steps) and the
stop_machine rendezvous (arrived CPUs run migration/N until the last one arrives); then by the
scenario echo only (``partition.smt`` and ``partition.numa_nodes`` appear in summary.json; the results
without those two keys hash to the previous digests); then by the
RCU irq_work IPI of issue 13 section 3 (``print_cpu_stall_info``'s fourth flag ``0`` for a holdout
whose irq_work is still pending: the two stress digests, their logs only; the doorbell IPIs to SMT
siblings moved none)."""


def digest(name: str) -> tuple[str, str, float, int]:
    """Run one scenario; return its name, digest, CPU seconds and event count."""
    from lpmsim.config.loader import load_scenario
    from lpmsim.runner import run_scenario

    preset, overrides = SCENARIOS[name]
    log: list[str] = []
    c0 = time.process_time()
    summary = run_scenario(load_scenario(preset=preset, overrides=overrides), kernel_log=log)
    cpu = time.process_time() - c0
    summary.pop("wall_s")
    events = int(summary["sim"].pop("events"))
    h = hashlib.sha256(json.dumps(summary, sort_keys=True).encode())
    h.update("\n".join(log).encode())
    return name, h.hexdigest()[:16], cpu, events


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--check", action="store_true", help="exit 1 when a digest differs from EXPECTED")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    bad = False
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, dig, cpu, events in pool.map(digest, names):
            want = EXPECTED.get(name)
            mark = "" if want is None else ("  ok" if dig == want else f"  DIFFERS (expected {want})")
            print(f"{name:20s} {dig}  cpu {cpu:7.2f} s  events {events}{mark}", flush=True)
            bad = bad or (want is not None and dig != want)
    return 1 if args.check and bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Speed and memory of ``lpmsim run`` per preset and fidelity mode (issue 2, section 7).

Usage::

    python benchmarks/run_bench.py [--presets small,default,large,lpm-2022] [--modes exact,fluid]
                                   [--repeat N] [--json]
    python benchmarks/run_bench.py --cases issue12 [--repeat N] [--json]
    python benchmarks/run_bench.py --cases stress,small-oltp     # named cases, see CASES

A *case* is a preset with ``--set`` overrides and a mode (``CASES``; ``--cases issue12`` runs the
target cases of issue 12, ``--cases list`` prints them).  ``--presets``/``--modes`` run the plain
presets as before.

Each (preset, mode, repetition) runs in a fresh Python subprocess (this script re-invoked with
``--child``), so that the peak resident set size is that run's alone: the parent collects the child
with ``os.wait4``, whose resource usage covers exactly that child (interpreter, imports and
simulation included).  Figures per row:

* ``wall s``: the simulation's own wall time (``wall_s`` of the summary: layout, pre-copy,
  post-copy up to ``completed``, and the summary), median over the repetitions;
* ``CPU s``: the simulation's CPU time (``time.process_time`` around it), median: on a shared
  machine the figure least disturbed by other jobs (wall s is CPU s plus waiting for a core);
* ``proc s``: wall time of the whole child process (adds interpreter start-up, imports and
  scenario loading), median;
* ``peak RSS MB``: maximum resident set size of the child (``ru_maxrss``), the largest over the
  repetitions, in MiB;
* ``vCPU-s / wall-s``: ``partition.vcpus x migration.total_s / wall s``, i.e. simulated vCPU
  seconds, from the start of the first pre-copy round to ``completed`` (or to ``sim.max_time_s``
  when the transfer did not complete), per wall second of simulation;
* ``post-copy vCPU-s / wall-s``: the same with ``migration.postcopy_s`` (resume to ``completed``):
  pre-copy rounds are drawn in closed form, so the total rate mostly measures the pre-copy length;
* ``events``: events processed by the discrete-event core (``sim.events``), and ``events/s``:
  events per wall second (in ``fluid`` mode an event is a batch of fluid steps run back to back,
  a kernel model's timer or the end of a published episode), ``steps/s`` the fluid steps
  (``guest`` time steps, counted by the fluid guest) per wall second.

``exact`` is skipped for presets with more than 2^25 pages (one byte of page state, 8 bytes of
touch probability and 8 of write rate per page would take several GiB).  No timing assertion is
made anywhere: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PRESETS = ("small", "default", "large", "lpm-2022")
DEFAULT_MODES = ("exact", "fluid")
EXACT_MAX_PAGES = 2**25


@dataclass(frozen=True)
class Case:
    """A named benchmark case: a preset, ``--set`` overrides and a fidelity mode."""

    name: str
    preset: str
    mode: str
    overrides: tuple[str, ...] = ()
    note: str = ""


STRESS = (
    "platform.link_gbps=0.5",
    "migration.resume_missing_fraction=0.05",
    "partition.vcpus=1024",
    "partition.memory_gib=512",
    # 150 s after resume: the pre-copy of 512 GiB at 0.5 Gb/s takes 8,796 s (scripts/validation-tables)
    "sim.max_time_s=8948.0",
    "kernel.preset=upstream",
    # the preset's kernel before issue 13 (the `v6.6` alias): the figures stay comparable; the preset
    # now runs SLES 15 SP4, whose post-resume RTAS call crashes the partition (docs/validation.md)
    "kernel.version=6.6.3",
    "mitigation.policy=nmi-factor:200",
)
SMALL_OLTP = (
    "partition.vcpus=64",
    "partition.memory_gib=64",
    "platform.link_gbps=25",
    "platform.rtt_us=200",
    "migration.resume_missing_fraction=0.3",
    "workload.preset=oltp",
)
CASES: dict[str, Case] = {
    c.name: c
    for c in (
        Case(
            "stress",
            "lpm-2022",
            "fluid",
            STRESS,
            "validation stress setting, 1,024 vCPUs, 150 s after resume",
        ),
        Case(
            "lpm-2022",
            "lpm-2022",
            "fluid",
            ("kernel.version=6.6.3",),
            "to completion (its pre-issue-13 kernel)",
        ),
        Case("large", "large", "fluid", (), "to completion"),
        Case("large-oltp", "large", "fluid", ("workload.preset=oltp",), "to completion"),
        Case("default-exact", "default", "exact", (), "64 vCPUs, 256 GiB"),
        Case("small-oltp", "small", "fluid", SMALL_OLTP, "64 vCPUs, 64 GiB, 25 Gb/s, 30 % missing"),
        Case(
            "small-oltp-1024",
            "small",
            "fluid",
            (*SMALL_OLTP, "partition.vcpus=1024", "partition.memory_gib=1024"),
            "the same with 1,024 vCPUs and 1 TiB",
        ),
        Case(
            "large-64t",
            "large",
            "fluid",
            ("partition.memory_gib=65536", "sim.max_time_s=200000"),
            "1,920 vCPUs, 64 TiB (pre-copy alone outlasts the preset's 20,000 s horizon)",
        ),
    )
}
GROUPS = {"issue12": tuple(CASES)}


@dataclass
class Row:
    preset: str
    mode: str
    case: str = ""
    vcpus: int = 0
    pages: int = 0
    skipped: str = ""
    completed: bool = False
    sim_total_s: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    proc_wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    vcpu_s_per_wall_s: float = 0.0
    postcopy_s: float = 0.0
    postcopy_vcpu_s_per_wall_s: float = 0.0
    events: int = 0
    events_per_s: float = 0.0
    steps: int = 0
    steps_per_s: float = 0.0
    source: str = ""
    runs: list[dict[str, float]] = field(default_factory=list)


def _child(preset: str, mode: str, overrides: list[str]) -> int:
    """Run one simulation and print the figures the parent needs as one JSON line."""
    import lpmsim
    from lpmsim.config.loader import load_scenario
    from lpmsim.guest.fluid import FluidGuest
    from lpmsim.runner import simulate, summarise

    scenario = load_scenario(preset=preset, overrides=[*overrides, f"sim.mode={mode}"])
    t0 = time.perf_counter()
    c0 = time.process_time()
    st = simulate(scenario)
    summary = summarise(st, time.perf_counter() - t0)
    cpu_s = time.process_time() - c0
    steps = getattr(st.guest, "steps", 0) if isinstance(st.guest, FluidGuest) else 0
    mig = summary["migration"]
    out = {
        "vcpus": scenario.partition.vcpus,
        "pages": scenario.total_pages,
        "completed": bool(mig.get("completed", False)),
        "total_s": float(mig.get("total_s", 0.0)),
        "postcopy_s": float(mig.get("postcopy_s", 0.0)),
        "wall_s": float(summary["wall_s"]),
        "events": int(summary["sim"]["events"]),
        "steps": int(steps),
        "cpu_s": cpu_s,
        "source": str(Path(lpmsim.__file__).parent),
    }
    print(json.dumps(out))
    return 0


def _pages(preset: str, overrides: tuple[str, ...]) -> tuple[int, int]:
    from lpmsim.config.loader import load_scenario

    sc = load_scenario(preset=preset, overrides=list(overrides))
    return sc.total_pages, sc.partition.vcpus


def _run_child(preset: str, mode: str, overrides: tuple[str, ...]) -> tuple[dict[str, Any], float, float]:
    """Returns (child's figures, process wall seconds, peak RSS in MiB)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", preset, mode, *overrides]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{preset}/{mode}: child exited with {proc.returncode}")
    # ru_maxrss is in KiB on Linux.
    return json.loads(out.strip().splitlines()[-1]), elapsed, usage.ru_maxrss / 1024


def bench(preset: str, mode: str, repeat: int, case: Case | None = None) -> Row:
    overrides = case.overrides if case is not None else ()
    pages, vcpus = _pages(preset, overrides)
    row = Row(preset=preset, mode=mode, case=case.name if case else preset, vcpus=vcpus, pages=pages)
    if mode == "exact" and pages > EXACT_MAX_PAGES:
        row.skipped = "skipped: too large for exact"
        return row
    walls: list[float] = []
    cpus: list[float] = []
    procs: list[float] = []
    for _ in range(repeat):
        fig, proc_s, rss = _run_child(preset, mode, overrides)
        walls.append(float(fig["wall_s"]))
        cpus.append(float(fig.get("cpu_s", 0.0)))
        procs.append(proc_s)
        row.peak_rss_mb = max(row.peak_rss_mb, rss)
        row.completed = bool(fig["completed"])
        row.sim_total_s = float(fig["total_s"])
        row.postcopy_s = float(fig["postcopy_s"])
        row.events = int(fig["events"])
        row.steps = int(fig.get("steps", 0))
        row.source = str(fig["source"])
        row.runs.append(
            {"wall_s": float(fig["wall_s"]), "cpu_s": cpus[-1], "proc_wall_s": proc_s, "peak_rss_mb": rss}
        )
    row.wall_s = statistics.median(walls)
    row.cpu_s = statistics.median(cpus)
    row.proc_wall_s = statistics.median(procs)
    if row.wall_s > 0:
        row.vcpu_s_per_wall_s = vcpus * row.sim_total_s / row.wall_s
        row.postcopy_vcpu_s_per_wall_s = vcpus * row.postcopy_s / row.wall_s
        row.events_per_s = row.events / row.wall_s
        row.steps_per_s = row.steps / row.wall_s
    return row


HEADER = (
    "case",
    "preset",
    "mode",
    "vCPUs",
    "pages",
    "sim s",
    "wall s",
    "CPU s",
    "proc s",
    "peak RSS MB",
    "vCPU-s / wall-s",
    "post-copy s",
    "post-copy vCPU-s / wall-s",
    "events",
    "events/s",
    "steps/s",
)


def _cells(row: Row) -> list[str]:
    if row.skipped:
        return [row.case, row.preset, row.mode, f"{row.vcpus:,}", f"{row.pages:,}", row.skipped, *[""] * 10]
    total = f"{row.sim_total_s:,.1f}" + ("" if row.completed else " (not completed)")
    return [
        row.case,
        row.preset,
        row.mode,
        f"{row.vcpus:,}",
        f"{row.pages:,}",
        total,
        f"{row.wall_s:.2f}",
        f"{row.cpu_s:.2f}",
        f"{row.proc_wall_s:.2f}",
        f"{row.peak_rss_mb:,.0f}",
        f"{row.vcpu_s_per_wall_s:,.0f}",
        f"{row.postcopy_s:,.2f}",
        f"{row.postcopy_vcpu_s_per_wall_s:,.0f}",
        f"{row.events:,}",
        f"{row.events_per_s:,.0f}",
        f"{row.steps_per_s:,.0f}",
    ]


def render(rows: list[Row]) -> str:
    table = [list(HEADER), *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    out = []
    for n, line in enumerate(table):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def _csv(text: str, allowed: tuple[str, ...] | None, what: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if allowed is not None:
        bad = [s for s in items if s not in allowed]
        if bad:
            raise SystemExit(f"--{what}: unknown {', '.join(bad)} (known: {', '.join(allowed)})")
    return items


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--presets", default=",".join(DEFAULT_PRESETS), help="comma-separated preset names")
    ap.add_argument("--modes", default=",".join(DEFAULT_MODES), help="comma-separated: exact, fluid")
    ap.add_argument("--repeat", type=int, default=1, help="runs per preset and mode (median wall time)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    ap.add_argument("--cases", help="comma-separated case names or groups (issue12); 'list' prints them")
    ap.add_argument("--child", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.child[0], args.child[1], args.child[2:])
    if args.cases == "list":
        for c in CASES.values():
            print(
                f"{c.name}: --preset {c.preset} --set sim.mode={c.mode} {' '.join('--set ' + o for o in c.overrides)}"
            )
        return 0
    if args.repeat < 1:
        raise SystemExit("--repeat: must be at least 1")
    presets = _csv(args.presets, None, "presets")
    modes = _csv(args.modes, DEFAULT_MODES, "modes")
    jobs: list[tuple[str, str, Case | None]] = []
    if args.cases:
        names: list[str] = []
        for item in _csv(args.cases, (*CASES, *GROUPS), "cases"):
            names.extend(GROUPS.get(item, (item,)))
        jobs = [(CASES[n].preset, CASES[n].mode, CASES[n]) for n in names]
    else:
        jobs = [(p, m, None) for p in presets for m in modes]
    rows: list[Row] = []
    for preset, mode, case in jobs:
        row = bench(preset, mode, args.repeat, case)
        rows.append(row)
        if not args.json:
            print(f"done: {row.case}/{mode} {row.skipped or f'{row.wall_s:.2f} s'}", file=sys.stderr)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(render(rows))
        print(
            "\nwall s: simulation wall time (summary wall_s), median; proc s: whole child process; "
            "vCPU-s / wall-s = vCPUs x simulated seconds from the first pre-copy round to completed "
            "(migration.total_s) / wall s; post-copy vCPU-s / wall-s uses migration.postcopy_s instead "
            "(pre-copy is computed in closed form per round and costs almost nothing)."
        )
        sources = sorted({r.source for r in rows if r.source})
        print(f"lpmsim imported from: {', '.join(sources)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

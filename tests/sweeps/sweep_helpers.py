"""Shared pieces of the sweep tests: a tiny sweep file, running the CLI, reading rows back."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]

# 2 points x 2 variants x 3 seeds of the small preset, about 0.05 s a run.
TINY = """
name = "tiny"
preset = "small"
set = ["partition.memory_gib=0.25", "sim.max_time_s={max_time_s}"]
variants = {variants}
seeds = {{ first = 1, count = {seeds} }}

[axes]
"partition.vcpus" = {vcpus}
"""


VARIANTS = '["a=none", "f=nmi-factor:300,platform.discipline=demand-first"]'


def tiny_text(seeds: int = 3, max_time_s: float = 5, variants: str = VARIANTS, vcpus: str = "[4, 8]") -> str:
    return TINY.format(seeds=seeds, max_time_s=max_time_s, variants=variants, vcpus=vcpus)


def tiny_sweep(
    directory: Path,
    seeds: int = 3,
    max_time_s: float = 5,
    name: str = "tiny.toml",
    variants: str = VARIANTS,
    vcpus: str = "[4, 8]",
) -> Path:
    path = directory / name
    path.write_text(tiny_text(seeds, max_time_s, variants, vcpus))
    return path


def lpmsim_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lpmsim.cli", *args]


def run_cli(*args: str, timeout: float = 300, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(lpmsim_cmd(*args), capture_output=True, text=True, timeout=timeout, **kw)


def rows(out: Path) -> list[dict[str, Any]]:
    """The Parquet rows without the one machine-dependent column."""
    return [
        {k: v for k, v in r.items() if k != "wall_s"} for r in pq.read_table(out / "runs.parquet").to_pylist()
    ]


def store_keys(out: Path) -> list[str]:
    with sqlite3.connect(out / "sweep.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [str(k) for (k,) in db.execute("SELECT key FROM runs ORDER BY key")]


def children_of(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            parents[int(d)] = int(fields[1])
    out: set[int] = set()
    frontier = {pid}
    while frontier:
        nxt = {p for p, pp in parents.items() if pp in frontier and p not in out}
        out |= nxt
        frontier = nxt
    return out


def alive(pids: set[int]) -> set[int]:
    live = set()
    for p in pids:
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            live.add(p)
    return live

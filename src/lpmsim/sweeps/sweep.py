"""``lpmsim sweep``: a plan run into a result store, resumable, and its results rebuilt from the store.

From Python::

    from pathlib import Path
    from lpmsim.sweeps.sweepfile import load_sweep
    from lpmsim.sweeps.sweep import run_sweep, load_result
    from lpmsim.sweeps.executors import LocalExecutor

    plan = load_sweep(Path("examples/sweep-vcpus.toml")).plan()
    res = run_sweep(plan, Path("sweep-out"), LocalExecutor(4))   # resumes if sweep-out holds it
    res.aggregates                                                # per (point, variant)
    res = load_result(Path("sweep-out"))                          # what the store holds, any time

Every figure is computed from the store's rows in plan order, so the files and tables do not
depend on the executor, the number of workers, the order runs finished in, or how many sessions
it took (``wall_s`` apart).
"""

from __future__ import annotations

import fcntl
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lpmsim import __version__
from lpmsim.sweeps.aggregate import DEFINITIONS, aggregate_variant
from lpmsim.sweeps.executors import Executor, drive
from lpmsim.sweeps.outputs import (
    JSON_NAME,
    PARQUET_NAME,
    arrow_table,
    atomic_text,
    cell_value,
    json_text,
    remove_stale_temps,
    value_kind,
    write_parquet,
)
from lpmsim.sweeps.plan import Plan, Point
from lpmsim.sweeps.rows import Row, RunResult
from lpmsim.sweeps.store import ResultStore, StoreError, point_to_json, remove_store, store_path

Progress = Callable[[RunResult, int, int], None]
"""Called after each run of this session with (its result, runs stored, runs planned)."""


def describe(plan: Plan, command: Sequence[str] | None) -> dict[str, Any]:
    """What the store keeps about a plan, enough to rebuild every output without the sweep file."""
    cells = plan.cell_scenarios()
    first: dict[str, Any] = {}
    for (_, name), sc in cells.items():
        first.setdefault(name, sc)
    return {
        "name": plan.name,
        "command": None if command is None else list(command),
        "axes": [{"field": a.field, "values": list(a.values)} for a in plan.axes],
        "seeds": plan.seeds,
        "variants": [
            {
                "name": v.name,
                "variant": str(v),
                "policy": first[v.name].mitigation.policy,
                "options": dict(v.options),
                "overrides": list(v.overrides),
            }
            for v in plan.variants
        ],
        "cells": [
            {"point": [[f, val] for f, val in point], "variant": name, "scenario": sc.model_dump(mode="json")}
            for (point, name), sc in cells.items()
        ],
    }


@dataclass
class Session:
    """What this process did (absent when results are rebuilt with ``--report-only``)."""

    executor: str
    workers: int
    runs_run: int = 0
    runs_resumed: int = 0
    interrupted: bool = False
    wall_s: float = 0.0


@dataclass
class SweepResult:
    """A sweep as its store holds it: the plan's description and the finished runs in plan order."""

    description: dict[str, Any]
    planned: int
    results: list[RunResult]
    session: Session | None = None
    aggregates: dict[tuple[str, str], dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        by: dict[tuple[str, str], list[Row]] = {}
        for r in self.results:
            by.setdefault((point_to_json(r.point), r.variant), []).append(r.row)
        self.aggregates = {
            (point_to_json(p), v): aggregate_variant(by.get((point_to_json(p), v), []))
            for p in self.points
            for v in self.variant_names
        }

    @property
    def name(self) -> str:
        return str(self.description["name"])

    @property
    def axes(self) -> list[tuple[str, list[Any]]]:
        return [(str(a["field"]), list(a["values"])) for a in self.description["axes"]]

    @property
    def points(self) -> list[Point]:
        return [tuple(p) for p in itertools.product(*[[(f, v) for v in vals] for f, vals in self.axes])]

    @property
    def variant_names(self) -> list[str]:
        return [str(v["name"]) for v in self.description["variants"]]

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.description["seeds"]]

    @property
    def failures(self) -> list[RunResult]:
        return [r for r in self.results if not r.ok]

    @property
    def complete(self) -> bool:
        return len(self.results) == self.planned

    def aggregate_at(self, point: Point, variant: str) -> dict[str, Any]:
        return self.aggregates[(point_to_json(point), variant)]

    def to_json(self) -> dict[str, Any]:
        """The content of ``compare.json`` in a sweep's directory."""
        d = self.description
        scenarios = {
            (point_to_json(tuple((f, v) for f, v in c["point"])), c["variant"]): c["scenario"]
            for c in d["cells"]
        }
        s = self.session
        return {
            "lpmsim_version": __version__,
            "kind": "sweep",
            "command": d["command"],
            "scenario": self.name,
            "axes": d["axes"],
            "runs_per_variant": len(self.seeds),
            "seeds": self.seeds,
            "complete": self.complete,
            "variants": d["variants"],
            "points": [
                {
                    "point": dict(p),
                    "variants": [
                        {
                            "name": v,
                            "results": self.aggregate_at(p, v),
                            "scenario": scenarios[(point_to_json(p), v)],
                        }
                        for v in self.variant_names
                    ],
                }
                for p in self.points
            ],
            "failures": [
                {
                    "key": r.key,
                    "point": dict(r.point),
                    "variant": r.variant,
                    "seed": r.seed,
                    "error": r.error,
                    "attempts": r.attempts,
                    "traceback": r.traceback,
                }
                for r in self.failures
            ],
            "definitions": DEFINITIONS,
            "execution": {
                "runs_planned": self.planned,
                "runs_finished": len(self.results),
                "executor": None if s is None else s.executor,
                "workers": None if s is None else s.workers,
                "runs_this_session": None if s is None else s.runs_run,
                "interrupted": False if s is None else s.interrupted,
                "wall_s": None if s is None else s.wall_s,
            },
        }

    def parquet_rows(self) -> tuple[list[tuple[str, str]], list[Row]]:
        """The leading columns (``key`` and one per axis, typed) and the rows."""
        kinds = [(f, value_kind(vals)) for f, vals in self.axes]
        rows = [
            {"key": r.key, **{f: cell_value(dict(r.point)[f], k) for f, k in kinds}, **r.row}
            for r in self.results
        ]
        return [("key", "str"), *kinds], rows

    def arrow_table(self) -> Any:
        leading, rows = self.parquet_rows()
        meta = {
            "lpmsim_version": __version__,
            "scenario": self.name,
            "axes": self.description["axes"],
            "seeds": self.seeds,
        }
        return arrow_table(rows, meta, leading)

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """``out_dir/runs.parquet`` then ``out_dir/compare.json``, each atomically."""
        pq_path, json_path = out_dir / PARQUET_NAME, out_dir / JSON_NAME
        remove_stale_temps(out_dir)
        write_parquet(pq_path, self.arrow_table())
        atomic_text(json_path, self.dumps())
        return json_path, pq_path

    def dumps(self) -> str:
        return json_text(self.to_json())


def load_result(out_dir: Path, session: Session | None = None) -> SweepResult:
    """What the store in ``out_dir`` holds (``StoreError`` if there is none)."""
    path = store_path(out_dir)
    if not path.is_file():
        raise StoreError(f"{out_dir}: no result store ({path.name}) here")
    with ResultStore(path) as store:
        info = store.info()
        if info is None:
            raise StoreError(f"{path}: the store holds no plan yet")
        return SweepResult(info.description, info.runs, store.results(), session)


def open_store(out_dir: Path, plan: Plan, command: Sequence[str] | None) -> ResultStore:
    """Open (or create) the store for ``plan``; ``StoreError`` if it holds another plan."""
    out_dir.mkdir(parents=True, exist_ok=True)
    store = ResultStore(store_path(out_dir))
    try:
        info = store.info()
        if info is None:
            store.create_plan(plan.digest, plan.specs, describe(plan, command), __version__)
        elif info.digest != plan.digest:
            raise StoreError(
                incompatible(store.path, info.runs, str(info.description.get("name")), len(plan.specs))
            )
    except BaseException:
        store.close()
        raise
    return store


def incompatible(path: Path, runs: int, name: str, planned: int) -> str:
    return (
        f"{path} holds another plan ({runs} runs of {name!r}; this one plans {planned}): "
        "use --fresh to discard it, or another --out"
    )


LOCK_NAME = "sweep.lock"


@contextmanager
def session_lock(out_dir: Path) -> Iterator[None]:
    """One session at a time per directory (``StoreError`` if another holds it).  The lock is the
    kernel's (``flock``): it goes with the process that held it, ``kill -9`` included."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / LOCK_NAME, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"{out_dir}: another lpmsim sweep or compare is running in this directory"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_sweep(
    plan: Plan,
    out_dir: Path,
    executor: Executor,
    progress: Progress | None = None,
    command: Sequence[str] | None = None,
    fresh: bool = False,
) -> SweepResult:
    """Run the keys of ``plan`` that the store in ``out_dir`` has no row for, committing each row as
    it finishes; returns what the store holds at the end (``session.interrupted`` after Ctrl-C).
    ``fresh`` discards the store first (under the session lock)."""
    t0 = time.perf_counter()
    with session_lock(out_dir):
        if fresh:
            remove_store(store_path(out_dir))
        return _run(plan, out_dir, executor, progress, command, t0)


def _run(
    plan: Plan,
    out_dir: Path,
    executor: Executor,
    progress: Progress | None,
    command: Sequence[str] | None,
    t0: float,
) -> SweepResult:
    with open_store(out_dir, plan, command) as store:
        done = store.done_keys()
        missing = [s for s in plan.specs if s.key not in done]
        session = Session(executor.description, executor.workers, runs_resumed=len(done))
        stored = len(done)
        total = len(plan.specs)

        def finish(res: RunResult) -> None:
            nonlocal stored
            if store.record(res):
                stored += 1
            session.runs_run += 1
            if progress is not None:
                progress(res, stored, total)

        session.interrupted = drive(executor, missing, finish) if missing else False
        session.wall_s = time.perf_counter() - t0
        info = store.info()
        assert info is not None
        return SweepResult(info.description, info.runs, store.results(), session)

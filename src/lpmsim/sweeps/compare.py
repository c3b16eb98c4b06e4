"""``lpmsim compare``: the same seeds under several variants, run in parallel, and their statistics.

A notebook drives it like this::

    from pathlib import Path
    from lpmsim.config.loader import resolve_scenario
    from lpmsim.sweeps.compare import compare

    base = resolve_scenario(preset="small")
    res = compare(base, ["a=none", "b=nmi-factor:200"], runs=20, jobs=4)
    res.aggregates["b"]["p_crash"]          # {"k", "n", "p", "ci95_low", "ci95_high"}
    res.rows                                # one flat dict per run (pandas.DataFrame(res.rows))
    res.write("out/")                       # out/compare.json, out/runs.parquet

    # the same through a result store, as ``lpmsim compare`` runs it: resumable, kill-safe
    res = compare(base, ["a=none", "b=nmi-factor:200"], runs=20, out_dir=Path("out"))

A comparison is the one-point case of a sweep and uses its parts: ``plan`` (runs and their keys),
``executors`` (where they run), ``store`` and ``sweep.run_sweep`` (the result store, resume),
``aggregate`` (the figures) and ``outputs`` (the files).  Without ``out_dir`` the results stay in
memory (nothing is written until ``write``); with it, each run's row is committed to the store in
``out_dir`` as it finishes, and a new call with the same plan runs only the runs it lacks (another
plan there raises ``StoreError`` unless ``fresh=True``).  ``lpmsim compare`` always uses a store.

Every variant runs the seeds ``seed, seed+1, ..., seed+runs-1``; a run's ``sim.seed`` is its seed.
Each variant's scenario is validated before anything runs (``VariantError`` otherwise).  Results
do not depend on ``jobs`` or on the order runs finish in: rows are sorted by variant (in the order
given) then seed, and every aggregate is a function of that sorted list.  A run that raises is
recorded with its seed and ``Type: message`` and the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lpmsim import __version__
from lpmsim.config.scenario import Scenario
from lpmsim.sweeps.aggregate import DEFINITIONS, aggregate, aggregate_variant
from lpmsim.sweeps.executors import Executor, LocalExecutor, default_jobs, drive
from lpmsim.sweeps.outputs import (
    JSON_NAME,
    PARQUET_NAME,
    arrow_table,
    atomic_text,
    json_text,
    remove_stale_temps,
    write_parquet,
)
from lpmsim.sweeps.plan import MAX_SEED, Plan, plan_runs, prepare, seeds_for
from lpmsim.sweeps.rows import (
    COLUMN_NAMES,
    COLUMNS,
    OUTCOMES,
    Row,
    RunResult,
    RunSpec,
    Simulate,
    empty_row,
    run_one,
    summary_row,
)
from lpmsim.sweeps.sweep import run_sweep
from lpmsim.sweeps.variants import Variant

__all__ = [
    "COLUMNS",
    "COLUMN_NAMES",
    "DEFINITIONS",
    "JSON_NAME",
    "MAX_SEED",
    "OUTCOMES",
    "PARQUET_NAME",
    "CompareResult",
    "Plan",
    "Progress",
    "RunResult",
    "RunSpec",
    "Simulate",
    "aggregate",
    "aggregate_variant",
    "compare",
    "default_jobs",
    "empty_row",
    "execute",
    "plan_runs",
    "prepare",
    "run_one",
    "run_plan",
    "run_stored",
    "seeds_for",
    "summary_row",
]

Progress = Callable[[RunResult, int, int], None]
"""Called in the calling process after each run with (its result, runs done, runs in total)."""


def execute(
    specs: Sequence[RunSpec],
    jobs: int | None = None,
    progress: Progress | None = None,
    simulate: Simulate | None = None,
    executor: Executor | None = None,
) -> tuple[list[RunResult], bool]:
    """Run ``specs``; returns (results in ``specs`` order, interrupted by Ctrl-C).

    ``jobs=1`` runs in this process; otherwise a pool of ``jobs`` spawned processes (default: the
    number of CPUs), or ``executor`` if given.  On Ctrl-C the runs that finished are returned."""
    ex = executor if executor is not None else LocalExecutor(jobs, simulate)
    by_key = {(s.variant, s.seed, s.point): i for i, s in enumerate(specs)}
    done: dict[int, RunResult] = {}
    total = len(specs)

    def finish(res: RunResult) -> None:
        i = by_key[(res.variant, res.seed, res.point)]
        done[i] = res
        if progress is not None:
            progress(res, len(done), total)

    interrupted = drive(ex, specs, finish)
    return [done[i] for i in sorted(done)], interrupted


@dataclass
class CompareResult:
    """A finished (or interrupted) comparison."""

    name: str
    variants: list[Variant]
    scenarios: dict[str, Scenario]  # each variant's scenario, with the first seed
    seeds: list[int]
    results: list[RunResult]  # sorted by variant (given order) then seed
    interrupted: bool = False
    jobs: int = 1
    wall_s: float = 0.0
    aggregates: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        rank = {v.name: i for i, v in enumerate(self.variants)}
        self.results = sorted(self.results, key=lambda r: (rank[r.variant], r.seed))
        agg = aggregate(self.rows)
        self.aggregates = {v.name: agg.get(v.name) or aggregate_variant([]) for v in self.variants}

    @property
    def rows(self) -> list[Row]:
        return [r.row for r in self.results]

    @property
    def failures(self) -> list[RunResult]:
        return [r for r in self.results if not r.ok]

    @property
    def planned(self) -> int:
        return len(self.variants) * len(self.seeds)

    def to_json(self, command: Sequence[str] | None = None) -> dict[str, Any]:
        """The content of ``compare.json``."""
        return {
            "lpmsim_version": __version__,
            "command": None if command is None else list(command),
            "scenario": self.name,
            "runs_per_variant": len(self.seeds),
            "seeds": self.seeds,
            "complete": not self.interrupted and len(self.results) == self.planned,
            "variants": [
                {
                    "name": v.name,
                    "variant": str(v),
                    "policy": self.scenarios[v.name].mitigation.policy,
                    "options": dict(self.scenarios[v.name].mitigation.options),
                    "overrides": list(v.overrides),
                    "results": self.aggregates[v.name],
                    "scenario": self.scenarios[v.name].model_dump(mode="json"),
                }
                for v in self.variants
            ],
            "failures": [
                {"variant": r.variant, "seed": r.seed, "error": r.error, "traceback": r.traceback}
                for r in self.failures
            ],
            "definitions": DEFINITIONS,
            "execution": {
                "jobs": self.jobs,
                "runs_planned": self.planned,
                "runs_finished": len(self.results),
                "interrupted": self.interrupted,
                "wall_s": self.wall_s,
            },
        }

    def dumps(self, command: Sequence[str] | None = None) -> str:
        return json_text(self.to_json(command))

    def arrow_table(self) -> Any:
        """The rows as a ``pyarrow.Table`` with the fixed schema of ``COLUMNS``."""
        meta = {"lpmsim_version": __version__, "scenario": self.name, "seeds": self.seeds}
        return arrow_table(self.rows, meta)

    def write(self, out_dir: str | Path, command: Sequence[str] | None = None) -> tuple[Path, Path]:
        """Write ``out_dir/compare.json`` and ``out_dir/runs.parquet``, each atomically."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        json_path = out / JSON_NAME
        pq_path = out / PARQUET_NAME
        text = self.dumps(command)
        remove_stale_temps(out)
        # The Parquet file first: compare.json, which describes it, appears only once it is complete.
        write_parquet(pq_path, self.arrow_table())
        atomic_text(json_path, text)
        return json_path, pq_path


def run_plan(
    plan: Plan,
    jobs: int | None = None,
    progress: Progress | None = None,
    simulate: Simulate | None = None,
    executor: Executor | None = None,
) -> CompareResult:
    """Run a plan (see ``execute``) and aggregate it."""
    jobs = default_jobs() if jobs is None else jobs
    t0 = time.perf_counter()
    results, interrupted = execute(plan.specs, jobs, progress, simulate, executor)
    return CompareResult(
        name=plan.name,
        variants=plan.variants,
        scenarios=plan.scenarios,
        seeds=plan.seeds,
        results=results,
        interrupted=interrupted,
        jobs=jobs if executor is None else executor.workers,
        wall_s=time.perf_counter() - t0,
    )


def run_stored(
    plan: Plan,
    out_dir: Path,
    executor: Executor,
    progress: Progress | None = None,
    command: Sequence[str] | None = None,
    fresh: bool = False,
) -> CompareResult:
    """Run a plan into the result store of ``out_dir`` (``sweep.run_sweep``: only the runs it has
    no row for, each committed as it finishes; ``StoreError`` if it holds another plan and not
    ``fresh``), then aggregate every run the store holds."""
    t0 = time.perf_counter()
    stored = run_sweep(plan, out_dir, executor, progress, command, fresh)
    assert stored.session is not None
    return CompareResult(
        name=plan.name,
        variants=plan.variants,
        scenarios=plan.scenarios,
        seeds=plan.seeds,
        results=stored.results,
        interrupted=stored.session.interrupted,
        jobs=executor.workers,
        wall_s=time.perf_counter() - t0,
    )


def compare(
    base: dict[str, Any],
    variants: Sequence[Variant | str],
    runs: int,
    seed: int = 1,
    jobs: int | None = None,
    progress: Progress | None = None,
    simulate: Simulate | None = None,
    out_dir: Path | None = None,
    fresh: bool = False,
    executor: Executor | None = None,
) -> CompareResult:
    """Run ``runs`` seeds of every variant of ``base`` (a raw scenario mapping, as
    ``lpmsim.config.loader.resolve_scenario`` returns it) and aggregate them.

    With ``out_dir`` the runs go through the result store there (``run_stored``: resumable; the
    files are still written by ``write``).  ``executor`` (e.g. a ``DaskExecutor``) replaces the
    local processes of ``jobs``.  Raises ``VariantError`` before anything runs if a variant is
    invalid.  Ctrl-C stops the runs and returns what finished (``interrupted=True``)."""
    plan = prepare(base, variants, runs, seed)
    if out_dir is None:
        return run_plan(plan, jobs, progress, simulate, executor)
    ex = executor if executor is not None else LocalExecutor(jobs, simulate)
    try:
        return run_stored(plan, Path(out_dir), ex, progress, fresh=fresh)
    finally:
        if executor is None:
            ex.close()

"""``lpmsim compare``: the same seeds under several variants, run in parallel, and their statistics.

A notebook drives it like this::

    from lpmsim.config.loader import resolve_scenario
    from lpmsim.sweeps.compare import compare

    res = compare(resolve_scenario(preset="small"), ["a=none", "b=nmi-factor:200"], runs=20, jobs=4)
    res.aggregates["b"]["p_crash"]          # {"k", "n", "p", "ci95_low", "ci95_high"}
    res.rows                                # one flat dict per run (pandas.DataFrame(res.rows))
    res.write("out/")                       # out/compare.json, out/runs.parquet

Every variant runs the seeds ``seed, seed+1, ..., seed+runs-1``; a run's ``sim.seed`` is its seed.
Each variant's scenario is validated before anything runs (``VariantError`` otherwise).  Results
do not depend on ``jobs`` or on the order runs finish in: rows are sorted by variant (in the order
given) then seed, and every aggregate is a function of that sorted list.  A run that raises is
recorded with its seed and ``Type: message`` and the others go on.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lpmsim import __version__
from lpmsim.config.scenario import Scenario
from lpmsim.kernel.model import DETECTORS
from lpmsim.sweeps.stats import Proportion, mean_of, median_of
from lpmsim.sweeps.variants import Variant, VariantError, parse_variants, variant_scenario

Simulate = Callable[[Scenario], dict[str, Any]]
"""What runs one scenario: ``lpmsim.runner.run_scenario`` unless a caller (a test) gives another
top-level, picklable function."""

MAX_SEED = 2**63 - 1
JSON_NAME = "compare.json"
PARQUET_NAME = "runs.parquet"
OUTCOMES = ("survived", "panic", "crash")

# -- the per-run row ----------------------------------------------------------------------------------

COLUMNS: tuple[tuple[str, str], ...] = (
    ("variant", "str"),
    ("policy", "str"),
    ("seed", "int"),
    ("ok", "bool"),
    ("error", "str"),
    ("outcome", "str"),
    ("crash_cause", "str"),
    ("crash_s", "float"),
    *((f"reports_{d}", "int") for d in DETECTORS),
    *((f"reports_migration_{d}", "int") for d in DETECTORS),
    *((f"reports_bug_{d}", "int") for d in DETECTORS),
    ("hv_stall_annotations", "int"),
    ("nmi_ipi_sent", "int"),
    ("nmi_ipi_timed_out", "int"),
    ("nmi_ipi_unrecoverable", "int"),
    ("bugs_injected", "int"),
    ("bugs_detected", "int"),
    ("detection_delay_median_s", "float"),
    ("detection_delays_s", "list[float]"),
    ("migration_completed", "bool"),
    ("fault_latency_p99_s", "float"),
    ("blocktime_per_vcpu_p99_s", "float"),
    ("postcopy_s", "float"),
    ("throughput_loss_frac", "float"),
    ("demand_faults", "int"),
    ("wall_s", "float"),
)
"""Every column of a row (and of ``runs.parquet``) with its type; None is allowed in each but the
first four.  docs/compare.md says what each one means."""

COLUMN_NAMES = tuple(name for name, _ in COLUMNS)


@dataclass(frozen=True)
class RunSpec:
    """One run: a variant's validated scenario with ``sim.seed = seed``."""

    variant: str
    policy: str
    seed: int
    scenario: Scenario


@dataclass(frozen=True)
class RunResult:
    """What a run leaves: its flat row (``COLUMNS``) and, if it failed, the traceback."""

    row: dict[str, Any]
    traceback: str | None = None

    @property
    def variant(self) -> str:
        return str(self.row["variant"])

    @property
    def seed(self) -> int:
        return int(self.row["seed"])

    @property
    def ok(self) -> bool:
        return bool(self.row["ok"])

    @property
    def error(self) -> str | None:
        err = self.row["error"]
        return None if err is None else str(err)


def _get(d: Any, *path: str) -> Any:
    """``d[a][b]...`` or None if any level is missing or not a mapping."""
    for key in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def _int(x: Any) -> int | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return int(x)


def _count(x: Any) -> int | None:
    """A report count given as a number, a list of reports or ``{"reports": n}``."""
    if isinstance(x, list | tuple):
        return len(x)
    if isinstance(x, Mapping):
        return _int(x.get("reports", x.get("count")))
    return _int(x)


def _bug_started(bug: Mapping[str, Any]) -> bool:
    """A bug counts as injected once it started (``status`` not_started: its time came after the
    end of the run, or its CPU was already taken by an earlier bug)."""
    if "status" in bug:
        return bug["status"] != "not_started"
    return bug.get("start_s", 0.0) is not None


def _bug_detected(bug: Mapping[str, Any]) -> bool:
    if "status" in bug:
        return bool(bug["status"] == "detected")
    if "detected_s" in bug:
        return bug["detected_s"] is not None
    if "missed" in bug:
        return not bug["missed"]
    return bug.get("detected_by") is not None


def empty_row(spec: RunSpec) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMN_NAMES)
    row.update(variant=spec.variant, policy=spec.policy, seed=spec.seed, ok=False, detection_delays_s=[])
    return row


def summary_row(spec: RunSpec, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The flat row of a finished run (missing parts of the summary become None)."""
    row = empty_row(spec)
    row["ok"] = True
    row["outcome"] = summary.get("outcome")
    crash = summary.get("crash")
    row["crash_cause"] = _get(crash, "cause")
    row["crash_s"] = _num(_get(crash, "time_s"))
    wd = summary.get("watchdogs")
    for d in DETECTORS:
        row[f"reports_{d}"] = _count(_get(wd, d))
    split = summary.get("reports")
    if isinstance(split, Mapping):
        for cause in ("migration", "bug"):
            by = split.get(cause)
            if isinstance(by, Mapping):
                for d in DETECTORS:
                    row[f"reports_{cause}_{d}"] = _count(by.get(d, 0))
    for k in ("sent", "timed_out", "unrecoverable"):
        row[f"nmi_ipi_{k}"] = _int(_get(wd, "nmi_ipi", k))
    # the annotate policy's "memory access stalled N s in the hypervisor" lines (0 without it)
    row["hv_stall_annotations"] = _count(_get(wd, "hv_stall")) or 0
    bugs = summary.get("bugs")
    bug_list = (
        [b for b in bugs if isinstance(b, Mapping) and _bug_started(b)] if isinstance(bugs, list) else []
    )
    detected = [b for b in bug_list if _bug_detected(b)]
    delays = [x for x in (_num(b.get("delay_s")) for b in detected) if x is not None]
    row["bugs_injected"] = len(bug_list)
    row["bugs_detected"] = len(detected)
    row["detection_delays_s"] = delays
    row["detection_delay_median_s"] = median_of(delays)
    mig = summary.get("migration")
    if _get(mig, "enabled"):
        row["migration_completed"] = bool(_get(mig, "completed"))
        row["fault_latency_p99_s"] = _num(_get(mig, "fault_latency_s", "p99"))
        row["blocktime_per_vcpu_p99_s"] = _num(_get(mig, "blocktime_s", "per_vcpu_p99"))
        row["postcopy_s"] = _num(_get(mig, "postcopy_s"))
        row["demand_faults"] = _int(_get(mig, "demand_faults"))
    row["throughput_loss_frac"] = _num(_get(summary, "guest", "throughput_loss_frac"))
    row["wall_s"] = _num(summary.get("wall_s"))
    return row


def _error_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def run_one(spec: RunSpec, simulate: Simulate | None = None) -> RunResult:
    """Run ``spec`` (in this process); any exception becomes the row's ``error``, never a raise."""
    t0 = time.perf_counter()
    try:
        if simulate is None:
            from lpmsim import runner  # looked up at call time so that tests can patch it

            simulate = runner.run_scenario
        summary = simulate(spec.scenario)
        return RunResult(summary_row(spec, summary))
    except Exception as exc:
        row = empty_row(spec)
        row["error"] = _error_line(exc)
        row["wall_s"] = time.perf_counter() - t0
        return RunResult(row, traceback.format_exc())


# -- planning -----------------------------------------------------------------------------------------


def seeds_for(seed: int, runs: int) -> list[int]:
    """The seeds every variant runs: ``seed, seed+1, ..., seed+runs-1``."""
    if runs < 1:
        raise VariantError(f"--runs {runs}: need at least one run")
    if seed < 0 or seed + runs - 1 > MAX_SEED:
        raise VariantError(f"--seed {seed} with --runs {runs}: seeds must stay within [0, 2**63-1]")
    return list(range(seed, seed + runs))


def _as_variants(variants: Sequence[Variant | str]) -> list[Variant]:
    if not variants:
        raise VariantError("give at least one --variant NAME=POLICY[,key=value...]")
    texts = [v for v in variants if isinstance(v, str)]
    parsed = iter(parse_variants(texts))
    out = [next(parsed) if isinstance(v, str) else v for v in variants]
    names = [v.name for v in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise VariantError(f"variant {dup}: the name is used twice")
    return out


def _with_seed(sc: Scenario, seed: int) -> Scenario:
    return sc.model_copy(update={"sim": sc.sim.model_copy(update={"seed": seed})})


def plan_runs(
    base: Mapping[str, Any], variants: Sequence[Variant | str], runs: int, seed: int = 1
) -> list[RunSpec]:
    """Every run of the comparison, variant by variant and seed by seed; checks everything first."""
    seeds = seeds_for(seed, runs)
    specs: list[RunSpec] = []
    for v in _as_variants(variants):
        sc = variant_scenario(base, v, seeds[0])
        policy = sc.mitigation.policy
        specs.extend(RunSpec(v.name, policy, s, _with_seed(sc, s)) for s in seeds)
    return specs


# -- execution ----------------------------------------------------------------------------------------

Progress = Callable[[RunResult, int, int], None]
"""Called in the calling process after each run with (its result, runs done, runs in total)."""


def _worker_init() -> None:
    # Ctrl-C goes to the whole process group: the parent stops the pool, workers must not print
    # tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_jobs() -> int:
    return os.cpu_count() or 1


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def execute(
    specs: Sequence[RunSpec],
    jobs: int | None = None,
    progress: Progress | None = None,
    simulate: Simulate | None = None,
) -> tuple[list[RunResult], bool]:
    """Run ``specs``; returns (results in ``specs`` order, interrupted by Ctrl-C).

    ``jobs=1`` runs in this process; otherwise a pool of ``jobs`` spawned processes (default: the
    number of CPUs).  Runs are started seed by seed across variants, so that an interrupted
    comparison has about as many runs of each variant.  On Ctrl-C the pool is stopped and the runs
    that finished are returned.
    """
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    order = sorted(range(len(specs)), key=lambda i: (specs[i].seed, i))
    done: dict[int, RunResult] = {}
    total = len(specs)

    def finish(i: int, res: RunResult) -> None:
        done[i] = res
        if progress is not None:
            progress(res, len(done), total)

    interrupted = False
    if jobs == 1 or total <= 1:
        try:
            for i in order:
                finish(i, run_one(specs[i], simulate))
        except KeyboardInterrupt:
            interrupted = True
    else:
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(jobs, total), mp_context=ctx, initializer=_worker_init)
        futures: dict[Future[RunResult], int] = {}
        try:
            futures = {pool.submit(run_one, specs[i], simulate): i for i in order}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=lambda f: futures[f]):
                    i = futures[fut]
                    exc = fut.exception()
                    if exc is None:
                        finish(i, fut.result())
                    else:  # the pool itself failed (a worker killed, a spec that cannot be pickled)
                        row = empty_row(specs[i])
                        row["error"] = _error_line(exc)
                        finish(i, RunResult(row, "".join(traceback.format_exception(exc))))
        except KeyboardInterrupt:
            interrupted = True
            for fut, i in futures.items():
                if i not in done and fut.done() and not fut.cancelled() and fut.exception() is None:
                    done[i] = fut.result()
            _stop_pool(pool)
        except BaseException:
            _stop_pool(pool)
            raise
        else:
            pool.shutdown(wait=True)
    return [done[i] for i in sorted(done)], interrupted


# -- aggregation --------------------------------------------------------------------------------------

DEFINITIONS: dict[str, str] = {
    "runs": "runs of the variant that finished, with or without an error",
    "ok": "runs that ran to the end (whatever the partition's outcome)",
    "failed": "runs that stopped with an error (listed under failures); not counted in any figure",
    "outcomes": "number of ok runs per outcome: survived, panic (a *_panic sysctl), crash (unrecoverable)",
    "p_crash": "P(outcome = crash) over ok runs: k of n, p = k/n, 95 % Wilson score interval",
    "p_panic": "P(outcome = panic) over ok runs: k of n, p = k/n, 95 % Wilson score interval",
    "reports_mean": "mean number of reports per ok run, per detector",
    "reports_migration_mean": "the same, reports the simulator attributes to migration latency "
    "(None when the summaries have no such split)",
    "reports_bug_mean": "the same, reports of injected kernel bugs (None without the split)",
    "hv_stall_annotations_mean": "mean 'memory access stalled N s in the hypervisor' lines per ok run "
    "(the annotate policy; 0 otherwise)",
    "nmi_ipi_mean": "mean NMI IPIs sent / not answered within 1 s / unrecoverable, per ok run",
    "bugs_detected": "injected bugs detected by any detector over all ok runs: k of n injected, "
    "with its 95 % Wilson interval (p None when no bug was injected)",
    "detection_delay_median_s": "median, over every detected bug of every ok run, of the time from the "
    "bug's start to its first report",
    "fault_latency_p99_s_median": "median over ok runs of each run's p99 demand-fault latency",
    "blocktime_per_vcpu_p99_s_median": "median over ok runs of each run's p99 (over vCPUs) of the "
    "time a vCPU spent blocked on demand faults",
    "postcopy_s_mean": "mean post-copy duration (resume to transfer complete, or to the end of the run)",
    "throughput_loss_frac_mean": "mean fraction of the workload's throughput lost after resume",
    "demand_faults_mean": "mean number of demand faults per run",
    "wall_s_mean": "mean wall-clock time of a run (the only figure that depends on the machine)",
}


def _col(rows: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    return [r.get(name) for r in rows]


def _split_mean(rows: Sequence[Mapping[str, Any]], cause: str) -> dict[str, float | None] | None:
    out = {d: mean_of(_col(rows, f"reports_{cause}_{d}")) for d in DETECTORS}
    return out if any(v is not None for v in out.values()) else None


def aggregate_variant(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The figures of one variant from its rows (any order: every statistic is order-free)."""
    ok = [r for r in rows if r.get("ok")]
    n = len(ok)
    outcomes = {o: sum(1 for r in ok if r.get("outcome") == o) for o in OUTCOMES}
    injected = sum(int(r.get("bugs_injected") or 0) for r in ok)
    detected = sum(int(r.get("bugs_detected") or 0) for r in ok)
    delays = [d for r in ok for d in (r.get("detection_delays_s") or ())]
    return {
        "runs": len(rows),
        "ok": n,
        "failed": len(rows) - n,
        "outcomes": outcomes,
        "p_crash": Proportion(outcomes["crash"], n).as_dict(),
        "p_panic": Proportion(outcomes["panic"], n).as_dict(),
        "reports_mean": {d: mean_of(_col(ok, f"reports_{d}")) for d in DETECTORS},
        "reports_migration_mean": _split_mean(ok, "migration"),
        "reports_bug_mean": _split_mean(ok, "bug"),
        "hv_stall_annotations_mean": mean_of(_col(ok, "hv_stall_annotations")),
        "nmi_ipi_mean": {
            k: mean_of(_col(ok, f"nmi_ipi_{k}")) for k in ("sent", "timed_out", "unrecoverable")
        },
        "bugs_detected": Proportion(detected, injected).as_dict(),
        "detection_delay_median_s": median_of(delays),
        "fault_latency_p99_s_median": median_of(_col(ok, "fault_latency_p99_s")),
        "blocktime_per_vcpu_p99_s_median": median_of(_col(ok, "blocktime_per_vcpu_p99_s")),
        "postcopy_s_mean": mean_of(_col(ok, "postcopy_s")),
        "throughput_loss_frac_mean": mean_of(_col(ok, "throughput_loss_frac")),
        "demand_faults_mean": mean_of(_col(ok, "demand_faults")),
        "wall_s_mean": mean_of(_col(rows, "wall_s")),
    }


def aggregate(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per variant (in order of first appearance), the figures of ``aggregate_variant``."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by.setdefault(str(r["variant"]), []).append(r)
    return {name: aggregate_variant(rs) for name, rs in by.items()}


# -- the whole comparison -----------------------------------------------------------------------------


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
    def rows(self) -> list[dict[str, Any]]:
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
        return json.dumps(self.to_json(command), indent=2, allow_nan=False) + "\n"

    def arrow_table(self) -> Any:
        """The rows as a ``pyarrow.Table`` with the fixed schema of ``COLUMNS``."""
        import pyarrow as pa

        types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
        fields = [
            pa.field(name, pa.list_(pa.float64()) if kind == "list[float]" else types[kind])
            for name, kind in COLUMNS
        ]
        meta = {
            "lpmsim": json.dumps({"lpmsim_version": __version__, "scenario": self.name, "seeds": self.seeds})
        }
        schema = pa.schema(fields, metadata=meta)
        return pa.Table.from_pylist(self.rows, schema=schema)

    def write(self, out_dir: str | Path, command: Sequence[str] | None = None) -> tuple[Path, Path]:
        """Write ``out_dir/compare.json`` and ``out_dir/runs.parquet``, each atomically."""
        import pyarrow.parquet as pq

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        json_path = out / JSON_NAME
        pq_path = out / PARQUET_NAME
        text = self.dumps(command)
        table = self.arrow_table()
        # The Parquet file first: compare.json, which describes it, appears only once it is complete.
        _atomic(pq_path, lambda tmp: pq.write_table(table, tmp))
        _atomic(json_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        return json_path, pq_path


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Plan:
    """A checked comparison, ready to run: every run's spec, nothing run yet."""

    name: str
    variants: list[Variant]
    seeds: list[int]
    specs: list[RunSpec]

    @property
    def scenarios(self) -> dict[str, Scenario]:
        """Each variant's scenario with the first seed."""
        out: dict[str, Scenario] = {}
        for s in self.specs:
            out.setdefault(s.variant, s.scenario)
        return out


def prepare(base: Mapping[str, Any], variants: Sequence[Variant | str], runs: int, seed: int = 1) -> Plan:
    """Check everything and plan the runs (``VariantError`` with one line if anything is refused)."""
    vs = _as_variants(variants)
    return Plan(str(base.get("name", "custom")), vs, seeds_for(seed, runs), plan_runs(base, vs, runs, seed))


def run_plan(
    plan: Plan,
    jobs: int | None = None,
    progress: Progress | None = None,
    simulate: Simulate | None = None,
) -> CompareResult:
    """Run a plan (see ``execute``) and aggregate it."""
    jobs = default_jobs() if jobs is None else jobs
    t0 = time.perf_counter()
    results, interrupted = execute(plan.specs, jobs, progress, simulate)
    return CompareResult(
        name=plan.name,
        variants=plan.variants,
        scenarios=plan.scenarios,
        seeds=plan.seeds,
        results=results,
        interrupted=interrupted,
        jobs=jobs,
        wall_s=time.perf_counter() - t0,
    )


def compare(
    base: Mapping[str, Any],
    variants: Sequence[Variant | str],
    runs: int,
    seed: int = 1,
    jobs: int | None = None,
    progress: Progress | None = None,
    simulate: Simulate | None = None,
) -> CompareResult:
    """Run ``runs`` seeds of every variant of ``base`` (a raw scenario mapping, as
    ``lpmsim.config.loader.resolve_scenario`` returns it) and aggregate them.

    Raises ``VariantError`` before anything runs if a variant is invalid.  Ctrl-C stops the runs
    and returns what finished (``interrupted=True``)."""
    return run_plan(prepare(base, variants, runs, seed), jobs, progress, simulate)

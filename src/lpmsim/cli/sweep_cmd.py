"""``lpmsim sweep``: a grid of scenarios x variants x seeds into a resumable result store.

Exit codes: 0 every run ran; 1 a run failed with an error or the outputs could not be written; 2
refused input (nothing ran, nothing written); 130 interrupted (Ctrl-C or SIGTERM: every finished
run is in the store; the same command resumes).
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, NoReturn

import typer

from lpmsim.cli.common import err_console, fail, out_console
from lpmsim.sweeps.executors import Executor, LocalExecutor
from lpmsim.sweeps.outputs import JSON_NAME, PARQUET_NAME
from lpmsim.sweeps.plan import Plan
from lpmsim.sweeps.progress import Reporter
from lpmsim.sweeps.store import ResultStore, StoreError, store_path
from lpmsim.sweeps.sweep import SweepResult, incompatible, load_result, run_sweep
from lpmsim.sweeps.sweep_report import METRICS, render_sweep
from lpmsim.sweeps.sweepfile import SweepFileError, load_sweep

DEFAULT_OUT = Path("sweep-out")
EXIT_INTERRUPTED = 130


class ExecutorName(StrEnum):
    local = "local"
    dask = "dask"


def _refuse(message: str) -> NoReturn:
    fail(message)


def _check_out(out: Path) -> None:
    """Refuse an output directory that is a file or cannot be written (nothing is created)."""
    if out.exists() and not out.is_dir():
        _refuse(f"--out {out}: exists and is not a directory")
    target = out
    while not target.exists():
        if target.parent == target:
            break
        target = target.parent
    if not target.is_dir():
        _refuse(f"--out {out}: {target} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        _refuse(f"--out {out}: cannot write in {target}: {exc.strerror or exc}")


def _resumable(out: Path, plan: Plan, fresh: bool) -> int:
    """Runs of ``plan`` already in the store of ``out`` (0 for none or ``--fresh``); refuses a store
    that holds another plan or is not a store."""
    path = store_path(out)
    if fresh or not path.exists():
        return 0
    try:
        with ResultStore(path) as store:
            info = store.info()
            if info is None:
                return 0
            if info.digest != plan.digest:
                _refuse(incompatible(path, info.runs, str(info.description.get("name")), len(plan.specs)))
            return store.count()
    except StoreError as exc:
        _refuse(f"{exc} (use --fresh to replace it)")


def _executor(kind: ExecutorName, workers: int | None, scheduler: str | None) -> Executor:
    if kind is ExecutorName.local:
        if scheduler is not None:
            _refuse("--scheduler needs --executor dask")
        return LocalExecutor(workers)
    if scheduler is not None and workers is not None:
        _refuse(
            "give either --scheduler ADDRESS (an existing cluster) or --workers N (a local one), not both"
        )
    from lpmsim.sweeps.dask_executor import DaskExecutor, DaskUnavailable

    try:
        return DaskExecutor(scheduler, workers or os.cpu_count() or 1)
    except DaskUnavailable as exc:
        _refuse(str(exc))
    except (OSError, TimeoutError, ValueError) as exc:
        where = f"the scheduler at {scheduler}" if scheduler else "a LocalCluster on 127.0.0.1"
        msg = " ".join(str(exc).split()) or type(exc).__name__
        _refuse(f"--executor dask: cannot connect to {where}: {msg}")


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a batch system pre-empting the job) stops the sweep as Ctrl-C does."""

    def handler(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _command(
    file: Path, out: Path, kind: ExecutorName, workers: int | None, scheduler: str | None
) -> list[str]:
    cmd = ["lpmsim", "sweep", str(file), "--out", str(out)]
    if kind is not ExecutorName.local:
        cmd += ["--executor", kind.value]
    if scheduler is not None:
        cmd += ["--scheduler", scheduler]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return cmd


def _check_view(axes: list[str], by: str | None, metric: str) -> None:
    if metric not in METRICS:
        _refuse(f"--metric {metric}: expected one of {', '.join(METRICS)}")
    if by is not None and by not in axes:
        _refuse(f"--by {by}: not an axis of this sweep (axes: {', '.join(axes) or 'none'})")


def _report(res: SweepResult, out: Path, by: str | None, metric: str, as_json: bool, quiet: bool) -> int:
    """Write the exports, print the tables; returns the exit code."""
    write_error: str | None = None
    try:
        res.write(out)
    except OSError as exc:
        write_error = f"cannot write {out / JSON_NAME} and {out / PARQUET_NAME}: {exc.strerror or exc}"
    if not as_json and not quiet:
        render_sweep(res, out_console, by, metric)
    if as_json or write_error is not None:
        sys.stdout.write(res.dumps())
    if write_error is not None:
        err_console.print(f"error: {write_error}", markup=False)
        return 1
    if not quiet and not as_json:
        err_console.print(f"wrote {out / JSON_NAME} and {out / PARQUET_NAME}", markup=False)
    return 1 if res.failures else 0


def sweep(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="The sweep file (TOML: base scenario, axes, variants, seeds).",
            metavar="SWEEP.toml",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The directory of the result store and the exports.")
    ] = DEFAULT_OUT,
    executor: Annotated[
        ExecutorName, typer.Option("--executor", "-e", help="local processes, or a dask.distributed cluster.")
    ] = ExecutorName.local,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "--jobs",
            "-j",
            min=1,
            help="Worker processes (local), or the workers of a LocalCluster on 127.0.0.1 (dask); "
            "default: the number of CPUs.",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="Address of an existing dask.distributed scheduler, e.g. tcp://10.0.0.5:8786.",
            show_default=False,
        ),
    ] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Discard a store in --out that holds another plan (or any).")
    ] = False,
    report_only: Annotated[
        Path | None,
        typer.Option(
            "--report-only",
            help="Run nothing: rebuild DIR's runs.parquet, compare.json and tables from its store.",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Pivot one metric by this axis (a column per value).", show_default=False),
    ] = None,
    metric: Annotated[
        str, typer.Option("--metric", help=f"The metric of --by: {', '.join(METRICS)}.")
    ] = "p_crash",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print compare.json on stdout instead of the tables.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress, no tables (failures still shown).")
    ] = False,
) -> None:
    """Run a grid (axes x variants x seeds) into a result store that survives kills and resumes.

    Example: lpmsim sweep examples/sweep-vcpus.toml --out vcpus --by partition.vcpus
    """
    if report_only is not None:
        if file is not None or fresh:
            _refuse("--report-only DIR runs nothing: give no sweep file and no --fresh")
        try:
            res = load_result(report_only)
        except StoreError as exc:
            _refuse(str(exc))
        _check_view([f for f, _ in res.axes], by, metric)
        raise typer.Exit(_report(res, report_only, by, metric, as_json, quiet))
    if file is None:
        _refuse("give a sweep file (lpmsim sweep SWEEP.toml), or --report-only DIR")
    try:
        plan = load_sweep(file).plan()
    except SweepFileError as exc:
        _refuse(str(exc))
    _check_view([a.field for a in plan.axes], by, metric)
    _check_out(out)
    resumed = _resumable(out, plan, fresh)
    command = _command(file, out, executor, workers, scheduler)
    ex = _executor(executor, workers, scheduler)
    try:
        if resumed and not quiet:
            err_console.print(
                f"resuming: {resumed} of {len(plan.specs)} runs already in {store_path(out)}", markup=False
            )
        with (
            _sigterm_interrupts(),
            Reporter(err_console, len(plan.specs), resumed, quiet, label="sweep") as reporter,
        ):
            res = run_sweep(plan, out, ex, reporter, command, fresh)
    except StoreError as exc:
        _refuse(str(exc))
    finally:
        ex.close()
    code = _report(res, out, by, metric, as_json, quiet)
    assert res.session is not None
    if res.session.interrupted:
        err_console.print(
            f"interrupted: {len(res.results)} of {res.planned} runs in {store_path(out)}; "
            f"resume with: {shlex.join(command)}",
            markup=False,
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command()(sweep)

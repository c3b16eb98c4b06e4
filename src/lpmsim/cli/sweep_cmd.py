"""``lpmsim sweep``: a grid of scenarios x variants x seeds into a resumable result store.

Exit codes: 0 every run ran; 1 a run failed with an error or the outputs could not be written; 2
refused input (nothing ran, nothing written); 130 interrupted (Ctrl-C or SIGTERM: every finished
run is in the store; the same command resumes).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from lpmsim.cli.common import err_console, fail, out_console
from lpmsim.cli.store_options import (
    ExecutorName,
    ExecutorOpt,
    FreshOpt,
    JsonOpt,
    QuietOpt,
    SchedulerOpt,
    WorkersOpt,
    executor_args,
    run_session,
)
from lpmsim.sweeps.outputs import JSON_NAME, PARQUET_NAME
from lpmsim.sweeps.store import StoreError, store_path
from lpmsim.sweeps.sweep import SweepResult, load_result, run_sweep
from lpmsim.sweeps.sweep_report import METRICS, render_sweep
from lpmsim.sweeps.sweepfile import SweepFileError, load_sweep

DEFAULT_OUT = Path("sweep-out")
EXIT_INTERRUPTED = 130


def _command(
    file: Path, out: Path, kind: ExecutorName, workers: int | None, scheduler: str | None
) -> list[str]:
    return ["lpmsim", "sweep", str(file), "--out", str(out), *executor_args(kind, workers, scheduler)]


def _check_view(axes: list[str], by: str | None, metric: str) -> None:
    if metric not in METRICS:
        fail(f"--metric {metric}: expected one of {', '.join(METRICS)}")
    if by is not None and by not in axes:
        fail(f"--by {by}: not an axis of this sweep (axes: {', '.join(axes) or 'none'})")


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
    executor: ExecutorOpt = ExecutorName.local,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    fresh: FreshOpt = False,
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
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run a grid (axes x variants x seeds) into a result store that survives kills and resumes.

    Example: lpmsim sweep examples/sweep-vcpus.toml --out vcpus --by partition.vcpus
    """
    if report_only is not None:
        if file is not None or fresh:
            fail("--report-only DIR runs nothing: give no sweep file and no --fresh")
        try:
            res = load_result(report_only)
        except StoreError as exc:
            fail(str(exc))
        _check_view([f for f, _ in res.axes], by, metric)
        raise typer.Exit(_report(res, report_only, by, metric, as_json, quiet))
    if file is None:
        fail("give a sweep file (lpmsim sweep SWEEP.toml), or --report-only DIR")
    try:
        plan = load_sweep(file).plan()
    except SweepFileError as exc:
        fail(str(exc))
    _check_view([a.field for a in plan.axes], by, metric)
    command = _command(file, out, executor, workers, scheduler)
    res = run_session(
        "sweep",
        plan,
        out,
        (executor, workers, scheduler),
        fresh,
        quiet,
        lambda ex, progress: run_sweep(plan, out, ex, progress, command, fresh),
    )
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

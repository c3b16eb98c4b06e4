"""``lpmsim compare``: several policies (variants) over the same seeds, on local processes or a
Dask cluster, into the resumable result store of ``--out`` (the one-point case of ``lpmsim sweep``).

Exit codes: 0 every run ran (a crashed partition is a result, not an error); 1 a run failed with an
error or the outputs could not be written; 2 refused input (nothing ran, nothing written); 130
interrupted (Ctrl-C or SIGTERM: every finished run is in the store, what finished is printed and
written, and the same command resumes).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from lpmsim.cli.common import PresetOpt, ScenarioArg, SetOpt, err_console, fail, out_console, user_errors
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
from lpmsim.config.loader import ScenarioError, build_scenario, resolve_scenario
from lpmsim.sweeps.compare import JSON_NAME, PARQUET_NAME, CompareResult, Plan, prepare, run_stored
from lpmsim.sweeps.report import render
from lpmsim.sweeps.store import store_path
from lpmsim.sweeps.variants import VariantError, parse_variants

DEFAULT_OUT = Path("compare-out")
EXIT_INTERRUPTED = 130

VariantOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--variant",
        "-V",
        help="A variant NAME=POLICY[,key=value...]: policy options (bare keys) and scenario fields "
        "(dotted keys), e.g. -V f200=nmi-factor:200 -V df=kernel,platform.discipline=demand-first "
        "(repeatable; at least one).",
        metavar="NAME=POLICY[,k=v...]",
        show_default=False,
    ),
]


def _command_line(
    file: Path | None,
    preset: str | None,
    overrides: list[str],
    variants: list[str],
    runs: int,
    seed: int,
    out: Path,
    executor: tuple[ExecutorName, int | None, str | None],
) -> list[str]:
    """The command as it would be typed to repeat this comparison (options in a fixed order)."""
    cmd = ["lpmsim", "compare"]
    if file is not None:
        cmd.append(str(file))
    if preset is not None:
        cmd += ["--preset", preset]
    for s in overrides:
        cmd += ["--set", s]
    for v in variants:
        cmd += ["--variant", v]
    cmd += ["--runs", str(runs), "--seed", str(seed)]
    cmd += ["--out", str(out), *executor_args(*executor)]
    return cmd


def _plan(
    file: Path | None, preset: str | None, overrides: list[str], variants: list[str], runs: int, seed: int
) -> Plan:
    """Everything checked before anything runs; any refusal is one line and exit code 2."""
    if not variants:
        fail("give at least one --variant NAME=POLICY[,key=value...], e.g. --variant f200=nmi-factor:200")
    for s in overrides:
        key = s.partition("=")[0].strip()
        if key == "mitigation" or key.startswith("mitigation."):
            fail(f"--set {s}: the policy is what each --variant sets (NAME=POLICY[,option=value...])")
    try:
        parsed = parse_variants(variants)
    except VariantError as exc:
        fail(str(exc))
    with user_errors():
        base = resolve_scenario(file, preset, overrides)
        # The base itself must be a valid scenario (whatever its mitigation): its errors are the
        # loader's own, without a variant's name.
        build_scenario({**base, "mitigation": {}})
    try:
        return prepare(base, parsed, runs, seed)
    except (VariantError, ScenarioError) as exc:
        fail(str(exc))


def compare(
    file: ScenarioArg = None,
    preset: PresetOpt = None,
    overrides: SetOpt = None,
    variants: VariantOpt = None,
    runs: Annotated[int, typer.Option("--runs", "-n", min=1, help="Seeds per variant.")] = 20,
    seed: Annotated[
        int,
        typer.Option("--seed", min=0, help="First seed: every variant runs SEED, SEED+1, ..., SEED+RUNS-1."),
    ] = 1,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The directory of the result store (the same command resumes) and of compare.json "
            "and runs.parquet.",
        ),
    ] = DEFAULT_OUT,
    executor: ExecutorOpt = ExecutorName.local,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    fresh: FreshOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Run the same seeds under several policies and compare crash and panic risk, reports and cost.

    Example: lpmsim compare --preset large -V none=none -V f200=nmi-factor:200 -V dis=disable-nmi --runs 50

    The runs go into a result store in --out as they finish: the same command resumes after a kill;
    another comparison in the same --out is refused unless --fresh.
    """
    sets = list(overrides or [])
    texts = list(variants or [])
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: exists and is not a directory")
    plan = _plan(file, preset, sets, texts, runs, seed)
    where = (executor, workers, scheduler)
    command = _command_line(file, preset, sets, texts, runs, seed, out, where)
    res = run_session(
        "compare",
        plan,
        out,
        where,
        fresh,
        quiet,
        lambda ex, progress: run_stored(plan, out, ex, progress, command, fresh),
    )
    _finish(res, out, command, as_json, quiet)


def _finish(res: CompareResult, out: Path, command: list[str], as_json: bool, quiet: bool) -> None:
    write_error: str | None = None
    try:
        res.write(out, command)
    except OSError as exc:
        write_error = f"cannot write {out / JSON_NAME} and {out / PARQUET_NAME}: {exc.strerror or exc}"
    if not as_json and not quiet:
        render(res, out_console)  # the failed runs follow the tables (and were shown as they failed)
    if as_json or write_error is not None:
        # Nothing computed is lost: the JSON goes to stdout when the file could not be written.
        sys.stdout.write(res.dumps(command))
    if write_error is not None:
        err_console.print(f"[bold red]error:[/] {write_error}")
        raise typer.Exit(1)
    if not quiet and not as_json:
        err_console.print(f"wrote {out / JSON_NAME} and {out / PARQUET_NAME}", markup=False)
    if res.interrupted:
        err_console.print(
            f"interrupted: {len(res.results)} of {res.planned} runs in {store_path(out)}; "
            f"resume with: {shlex.join(command)}",
            markup=False,
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if res.failures:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(compare)

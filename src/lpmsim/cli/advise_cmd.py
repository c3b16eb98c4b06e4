"""``lpmsim advise``: what to set on this partition before a migration, with the risk on both sides.

A thin layer over ``lpmsim.api.advise`` (``lpmsim.advise``): parse the options, show a progress bar
on a terminal (nothing otherwise), print the advice or its JSON.  Exit codes: 0 advised; 1 a fit
accepted nothing or a run failed; 2 refused input (one line saying what to pass; nothing ran);
130 interrupted (what finished is printed).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lpmsim.advise.render import fit_lines, render
from lpmsim.api.advise import AdviseError, advise
from lpmsim.cli.common import PresetOpt, ScenarioArg, SetOpt, err_console, fail, out_console
from lpmsim.cli.store_options import JsonOpt, QuietOpt
from lpmsim.outputs.text import json_text
from lpmsim.sweeps.progress import Reporter
from lpmsim.sweeps.rows import RunResult

EXIT_INTERRUPTED = 130


class _Bar:
    """The sweeps' progress bar, with a total that changes as candidates leave the race."""

    def __init__(self, quiet: bool, label: str) -> None:
        self.rep = Reporter(err_console, 0, 0, quiet or not err_console.is_terminal, label=label)

    def __enter__(self) -> _Bar:
        self.rep.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.rep.__exit__(*exc)

    def _total(self, total: int) -> None:
        if self.rep.total != total:
            self.rep.total = total
            if self.rep.bar is not None:
                self.rep.bar.update(self.rep.task, total=total)

    def run(self, res: RunResult, done: int, total: int) -> None:
        self._total(total)
        self.rep(res, done, total)

    def fit(self, done: int, total: int) -> None:
        self._total(total)
        if self.rep.bar is not None:
            self.rep.bar.update(self.rep.task, completed=done)


def _command(argv: list[str]) -> list[str]:
    return ["lpmsim", *argv]


def advise_cmd(
    file: ScenarioArg = None,
    preset: PresetOpt = None,
    overrides: SetOpt = None,
    from_partition: Annotated[
        bool,
        typer.Option(
            "--from-partition",
            help="Read the facts from /proc and /sys of this partition (as lpmsim guard does).",
        ),
    ] = False,
    root: Annotated[
        Path,
        typer.Option(
            "--root", help="With --from-partition: read DIR/proc and DIR/sys instead.", metavar="DIR"
        ),
    ] = Path("/"),
    from_log: Annotated[
        Path | None,
        typer.Option(
            "--from-log",
            help="Fit the platform figures (effective link rate, per-fault overhead, fraction missing at resume) "
            "to this console log of a migration, then advise under the fitted platform.",
            metavar="LOG",
        ),
    ] = None,
    vcpus: Annotated[
        int | None, typer.Option("--vcpus", help="vCPUs (Linux CPUs, SMT threads included).")
    ] = None,
    memory_gib: Annotated[float | None, typer.Option("--memory-gib", help="Partition memory, GiB.")] = None,
    link_gbps: Annotated[
        float | None,
        typer.Option("--link-gbps", help="Effective rate of the migration link, Gb/s (an assumption)."),
    ] = None,
    kernel: Annotated[
        str | None,
        typer.Option(
            "--kernel", help="Kernel release (5.14.21-150400.24.46-default, 6.6) or pre-v6.0, v6.0, v6.6."
        ),
    ] = None,
    distro: Annotated[
        str | None, typer.Option("--distro", help="Default settings of: upstream, sles (kernel-facts 9.2).")
    ] = None,
    workload: Annotated[
        str | None,
        typer.Option(
            "--workload", help="Workload preset: idle, oltp, analytics, kernel-build, memory-stress."
        ),
    ] = None,
    runs: Annotated[int, typer.Option("--runs", "-n", min=1, help="Most seeds per candidate.")] = 12,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Seeds per round of the race.")] = 4,
    horizon: Annotated[
        float, typer.Option("--horizon", min=1.0, help="Simulated seconds after resume that count.")
    ] = 120.0,
    detection_runs: Annotated[
        int, typer.Option("--detection-runs", min=0, help="Runs per candidate with an injected real lockup.")
    ] = 3,
    sensitivity_runs: Annotated[
        int | None,
        typer.Option(
            "--sensitivity-runs",
            min=0,
            help="Most seeds per candidate at each sensitivity point "
            "(default: half of --runs; 0 skips the sensitivity).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="First seed.")] = 1,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Processes (default: one per CPU).")
    ] = None,
    fit_runs: Annotated[int, typer.Option("--fit-runs", min=1, help="--from-log: simulated samples.")] = 48,
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.0, help="--from-log: relative tolerance of the match.")
    ] = 0.25,
    priors: Annotated[
        list[str] | None,
        typer.Option(
            "--prior",
            help="--from-log: FIELD=LO:HI, the prior range of a fitted field (repeatable).",
            metavar="FIELD=LO:HI",
        ),
    ] = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """What to set on a partition before a migration, with the risk on both sides.

    Compares the candidates its kernel can use (sysctls, lpmsim guard policies, none): P(crash), reports
    per detector and the detection delay of a real lockup for each, the recommendation and the exact
    guard.toml or sysctl lines to deploy.

    Example: lpmsim advise --vcpus 1024 --memory-gib 4096 --link-gbps 10 --kernel 5.14.21 --distro sles

    The partition's facts come from the options, a scenario (SCENARIO or --preset) or --from-partition;
    --from-log fits the platform to a real log first.  See docs/advise.md.
    """
    if from_partition and from_log is not None:
        fail(
            "--from-partition and --from-log: give one (a log's partition is described by --preset or SCENARIO)"
        )
    bar = _Bar(quiet, "advise")
    try:
        with bar:
            result = advise(
                file if file is not None else preset,
                vcpus=vcpus,
                memory_gib=memory_gib,
                link_gbps=link_gbps,
                kernel=kernel,
                distro=distro,
                workload=workload,
                set=list(overrides or []),
                from_partition=root if from_partition else None,
                from_log=from_log,
                runs=runs,
                batch=batch,
                horizon_s=horizon,
                detection_runs=detection_runs,
                sensitivity_runs=sensitivity_runs,
                seed=seed,
                jobs=jobs,
                fit_runs=fit_runs,
                tolerance=tolerance,
                priors=list(priors or []),
                progress=bar.run,
                fit_progress=bar.fit,
            )
    except AdviseError as exc:
        if exc.fit is not None and as_json:
            sys.stdout.write(json_text({"fit": exc.fit.to_dict()}))
        elif exc.fit is not None and not quiet:
            for line in fit_lines(exc.fit):
                out_console.print(line, soft_wrap=True)
        fail(str(exc), exc.code)
    command = _command(sys.argv[1:])
    if as_json:
        sys.stdout.write(json_text(result.to_dict(command)))
    elif not quiet:
        render(result, out_console)
    if result.interrupted:
        err_console.print("interrupted: the advice covers the runs that finished", markup=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    failed = sum(s.failed for s in result.race.scored) + sum(
        s.failed for p in result.sensitivity for s in p.race.scored
    )
    if failed:
        err_console.print(f"error: {failed} run(s) failed; the figures leave them out", markup=False)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("advise")(advise_cmd)

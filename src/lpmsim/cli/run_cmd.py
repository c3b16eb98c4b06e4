"""``lpmsim run``: simulate one scenario and print its summary."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from lpmsim.api.run import RunOutput, simulate
from lpmsim.cli.common import (
    PresetOpt,
    ScenarioArg,
    SeedOpt,
    SetOpt,
    err_console,
    error_line,
    fail,
    get_scenario,
    out_console,
)
from lpmsim.outputs.summary import dumps, render, write_kernel_log, write_summary
from lpmsim.outputs.text import esc, plain


def run(
    file: ScenarioArg = None,
    preset: PresetOpt = None,
    seed: SeedOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write DIR/summary.json and DIR/dmesg.log.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no table.")] = False,
    overrides: SetOpt = None,
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            help="Also record the run's event trace to DIR/trace/ (Parquet; needs --out), for `lpmsim report DIR`.",
        ),
    ] = False,
) -> None:
    """Simulate a migration (the built-in 'default' preset when no FILE or --preset is given)."""
    if trace and out is None:
        fail("--trace needs --out DIR (the trace is written to DIR/trace/)")
    sc = get_scenario(file, preset, overrides, seed)
    show_progress = not quiet and not as_json and sys.stdout.isatty() and err_console.is_terminal
    result: RunOutput
    if show_progress:
        with Progress(
            TextColumn("[bold]simulating[/] {task.description}"),
            BarColumn(),
            TextColumn("sim {task.fields[sim]}"),
            TextColumn("wall"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=err_console,
            transient=True,
        ) as bar:
            limit0 = sc.sim.max_time_s
            task = bar.add_task(esc(sc.name), total=limit0, sim=f"0 / {limit0:,.0f} s", eta="-")
            last = [0.0]
            seen: list[tuple[float, float]] = []  # (wall, simulated) of the last ~10 s of updates

            def progress(now: float, limit: float) -> None:
                # simulated time / horizon (``limit``: where the run is expected to stop); the ETA
                # from the simulation's speed over the last ten seconds of wall time
                t = time.monotonic()
                if t - last[0] > 0.1:
                    last[0] = t
                    seen.append((t, now))
                    while t - seen[0][0] > 10.0 and len(seen) > 2:
                        seen.pop(0)
                    eta = "-"
                    dw, ds = t - seen[0][0], now - seen[0][1]
                    if dw > 0.5 and ds > 0:
                        left = (limit - now) * dw / ds
                        eta = f"{int(left) // 60}:{int(left) % 60:02d}"
                    bar.update(task, completed=now, total=limit, sim=f"{now:,.1f} / {limit:,.0f} s", eta=eta)

            result = simulate(sc, progress, trace=trace)
    else:
        result = simulate(sc, trace=trace)
    summary, kernel_log = result.summary, list(result.log)
    if out is not None:
        try:
            path = write_summary(summary, out)
            write_kernel_log(kernel_log, out)
            trace_dir = result.trace.write(out) if result.trace is not None else None
        except OSError as exc:
            # Keep what was computed: print it before reporting the failure.
            sys.stdout.write(dumps(summary))
            error_line(f"cannot write {out}/summary.json, dmesg.log and trace/: {exc.strerror or exc}")
            raise typer.Exit(1) from None
        if not quiet and not as_json:
            err_console.print(plain(f"wrote {path} and {out / 'dmesg.log'}"))
            if trace_dir is not None:
                err_console.print(plain(f"wrote {trace_dir}/ (see it: lpmsim report {out})"))
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    elif not quiet:
        render(summary, out_console, _source(file, preset, overrides, seed))


def _source(
    file: Path | None, preset: str | None, overrides: list[str] | None, seed: int | None
) -> list[str]:
    """The arguments that name this run's scenario, for the suggested next command."""
    args = [str(file)] if file is not None else ["--preset", preset or "default"]
    for o in overrides or ():
        args += ["--set", o]
    if seed is not None:
        args += ["--seed", str(seed)]
    return args


def register(app: typer.Typer) -> None:
    app.command()(run)

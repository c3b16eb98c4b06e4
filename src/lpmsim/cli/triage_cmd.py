"""``lpmsim triage``: read real kernel logs and say what fired, where, in which migration phase, and why."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from lpmsim.cli.common import err_console, fail, out_console
from lpmsim.triage.analyze import triage_file
from lpmsim.triage.events import Triage
from lpmsim.triage.reader import LogOpenError
from lpmsim.triage.report import render, to_json

FilesArg = Annotated[
    list[str],
    typer.Argument(
        help="Kernel log(s): dmesg, journalctl -k, syslog, serial console; .gz/.xz; '-' = stdin.",
        show_default=False,
        metavar="FILE...",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON ({events, phases}) instead of tables.")]
SinceOpt = Annotated[
    float | None,
    typer.Option("--since", help="Only events at or after this printk time (s).", metavar="SECONDS"),
]
UntilOpt = Annotated[
    float | None,
    typer.Option("--until", help="Only events at or before this printk time (s).", metavar="SECONDS"),
]
CalibrateOpt = Annotated[
    bool,
    typer.Option("--calibrate", help="Also print the lower bounds on stall durations the reports imply."),
]


def triage(
    files: FilesArg,
    json_out: JsonOpt = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    calibrate: CalibrateOpt = False,
) -> None:
    """Read kernel logs and report lockups, stalls, hung tasks, panics and LPM phases, with verdicts."""
    if since is not None and until is not None and since > until:
        fail(f"--since {since:g} is after --until {until:g}")
    if files.count("-") > 1:
        fail("'-' (stdin) can be given only once")
    results: list[Triage] = []
    for path in files:
        try:
            results.append(triage_file(path, since=since, until=until))
        except LogOpenError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{path}: cannot read ({exc.strerror or exc})")
        except MemoryError:
            fail(f"{path}: out of memory")
    for tri in results:
        for w in tri.warnings:
            err_console.print(f"[yellow]warning:[/] {tri.source}: {w}", markup=True, highlight=False)
    if json_out:
        sys.stdout.write(to_json(results, calibrate) + "\n")
    else:
        render(results, out_console, calibrate)


def register(app: typer.Typer) -> None:
    app.command("triage")(triage)

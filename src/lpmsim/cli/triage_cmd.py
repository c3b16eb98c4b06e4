"""``lpmsim triage``: read real kernel logs and say what fired, where, in which migration phase, and why."""

from __future__ import annotations

import math
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from lpmsim.cli.common import err_console, fail, out_console
from lpmsim.outputs.text import esc
from lpmsim.triage.analyze import triage_file
from lpmsim.triage.events import Triage
from lpmsim.triage.reader import LogOpenError
from lpmsim.triage.report import render, write_json

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

PROGRESS_AFTER_S = 2.0  # a bar appears only for inputs that take longer than this


class ProgressBar:
    """A progress bar on a terminal (bytes read / total, events so far), shown once reading a log has
    taken ``delay`` seconds, removed when it is done. Does nothing when ``console`` is not a terminal."""

    def __init__(self, console: Console, label: str, delay: float = PROGRESS_AFTER_S) -> None:
        self.console = console
        self.label = label
        self.delay = delay
        self.t0 = time.monotonic()
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, done: int, total: int | None, events: int) -> None:
        if self.progress is None:
            if not self.console.is_terminal or time.monotonic() - self.t0 < self.delay:
                return
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[events]} events"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(esc(self.label), total=total, events=0)
        assert self.task is not None
        self.progress.update(self.task, completed=done, total=total, events=events)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _finite(name: str, value: float | None) -> None:
    if value is not None and not math.isfinite(value):
        fail(f"{name} must be a finite number of seconds, not {value}")


def triage(
    files: FilesArg,
    json_out: JsonOpt = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    calibrate: CalibrateOpt = False,
) -> None:
    """Read kernel logs and report lockups, stalls, hung tasks, panics and LPM phases, with verdicts."""
    _finite("--since", since)
    _finite("--until", until)
    if since is not None and until is not None and since > until:
        fail(f"--since {since:g} is after --until {until:g}")
    if files.count("-") > 1:
        fail("'-' (stdin) can be given only once")
    results: list[Triage] = []
    for path in files:
        bar = ProgressBar(err_console, path)
        try:
            results.append(triage_file(path, since=since, until=until, progress=bar))
        except LogOpenError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{path}: cannot read ({exc.strerror or exc})")
        except MemoryError:
            fail(f"{path}: out of memory")
        finally:
            bar.close()
    for tri in results:
        for w in tri.warnings:
            err_console.print(
                f"[yellow]warning:[/] {esc(tri.source)}: {esc(w)}", markup=True, highlight=False
            )
    if json_out:
        write_json(results, sys.stdout, calibrate)
        sys.stdout.write("\n")
    else:
        render(results, out_console, calibrate)


def register(app: typer.Typer) -> None:
    app.command("triage")(triage)

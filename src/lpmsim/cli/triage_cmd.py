"""``lpmsim triage``: read real kernel logs and say what fired, where, in which migration phase, and why."""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
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

HtmlOpt = Annotated[
    Path | None,
    typer.Option(
        "--html",
        help="Also write an offline HTML report (events by CPU, phases, verdicts, lines).",
        metavar="FILE",
    ),
]
PngOpt = Annotated[
    Path | None,
    typer.Option(
        "--png", help="With --html: also a PNG of the events chart (headless Chromium).", metavar="FILE"
    ),
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
    html: HtmlOpt = None,
    png: PngOpt = None,
) -> None:
    """Read kernel logs and report lockups, stalls, hung tasks, panics and LPM phases, with verdicts."""
    if png is not None and html is None:
        fail("--png needs --html FILE")
    if html is None:
        _triage(files, json_out, since, until, calibrate, None, None)
        return
    with tempfile.TemporaryDirectory(prefix="lpmsim-triage-") as tmp:
        _triage(files, json_out, since, until, calibrate, (html, png), Path(tmp))


def _triage(
    files: list[str],
    json_out: bool,
    since: float | None,
    until: float | None,
    calibrate: bool,
    html: tuple[Path, Path | None] | None,
    tmp: Path | None,
) -> None:
    _finite("--since", since)
    _finite("--until", until)
    if since is not None and until is not None and since > until:
        fail(f"--since {since:g} is after --until {until:g}")
    if files.count("-") > 1:
        fail("'-' (stdin) can be given only once")
    results: list[Triage] = []
    paths: list[str] = []  # where each log can be read again (for --html)
    for path in files:
        bar = ProgressBar(err_console, path)
        read = path
        if path == "-" and tmp is not None:  # --html reads the lines again: keep stdin
            read = str(tmp / "stdin.log")
            with open(read, "wb") as fh:
                shutil.copyfileobj(sys.stdin.buffer, fh)
        paths.append(read)
        try:
            tri = triage_file(read, since=since, until=until, progress=bar)
            tri.source = path
            results.append(tri)
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
    if html is not None:
        _write_html(results, paths, *html)


def _write_html(results: list[Triage], paths: list[str], html: Path, png: Path | None) -> None:
    from lpmsim.cli.report_cmd import write_page
    from lpmsim.report.triage_report import build_triage, read_lines, wanted_lines

    texts = []
    for tri, path in zip(results, paths, strict=True):
        try:
            texts.append(read_lines(path, wanted_lines(tri)))
        except (OSError, LogOpenError) as exc:
            fail(f"{tri.source}: cannot read it again for --html ({exc})", 1)
    write_page(build_triage(results, texts), html, png)


def register(app: typer.Typer) -> None:
    app.command("triage")(triage)

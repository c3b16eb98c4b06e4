"""``lpmsim report DIR``: one self-contained HTML page of a run, a comparison or a sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lpmsim.cli.common import err_console, fail
from lpmsim.outputs.text import plain
from lpmsim.report.html import Page, render

HtmlOpt = Annotated[
    Path | None,
    typer.Option("--html", help="The HTML file to write (default: DIR/report.html).", metavar="FILE"),
]
PngOpt = Annotated[
    Path | None,
    typer.Option("--png", help="Also a PNG of the main chart (headless Chromium).", metavar="FILE"),
]


def write_page(page: Page, html_path: Path, png: Path | None, quiet: bool = False) -> None:
    """Write the page (and its PNG); a failure is one line and exit 1 (the HTML, once written, stays)."""
    try:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(render(page), encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {html_path}: {exc.strerror or exc}", 1)
    if not quiet:
        err_console.print(plain(f"wrote {html_path}"))
    if png is not None:
        from lpmsim.report.png import PngError, write_png

        try:
            write_png(page, png)
        except PngError as exc:
            fail(f"--png: {exc}", 1)
        except OSError as exc:
            fail(f"cannot write {png}: {exc.strerror or exc}", 1)
        if not quiet:
            err_console.print(plain(f"wrote {png}"))


def report(
    directory: Annotated[
        Path,
        typer.Argument(
            help="The --out DIR of `lpmsim run` (with --trace for the timeline), `compare` or `sweep`.",
            metavar="DIR",
        ),
    ],
    html: HtmlOpt = None,
    png: PngOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Write an offline HTML report (charts and tables, nothing fetched) of a run, comparison or sweep."""
    from lpmsim.report.load import ReportError, page_for

    try:
        page = page_for(directory)
    except ReportError as exc:
        fail(str(exc))
    write_page(page, html if html is not None else directory / "report.html", png, quiet)


def register(app: typer.Typer) -> None:
    app.command("report")(report)

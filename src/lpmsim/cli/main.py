"""The ``lpmsim`` console script.

Each command group lives in its own module with a ``register(app)`` function; this module only
assembles them, so that ``lpmsim --help`` stays the one table of contents of the CLI.  ``main``
runs the app and turns a usage error (unknown command or option, bad option value) into one line
on stderr with exit code 2, with whatever the user typed shown as text.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from lpmsim import __version__
from lpmsim.cli import (
    advise_cmd,
    compare_cmd,
    guard_cmd,
    policies_cmd,
    report_cmd,
    run_cmd,
    scenario_cmds,
    sweep_cmd,
    triage_cmd,
)
from lpmsim.cli.common import err_console
from lpmsim.outputs.text import plain

app = typer.Typer(
    name="lpmsim",
    help="Simulate what a Linux guest's lockup detectors do while an IBM Power partition is live-migrated.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"lpmsim {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", help="Print the version and exit.", callback=_version, is_eager=True),
    ] = False,
) -> None:
    """Simulate what a Linux guest's lockup detectors do while an IBM Power partition is live-migrated."""


run_cmd.register(app)
compare_cmd.register(app)
sweep_cmd.register(app)
policies_cmd.register(app)
scenario_cmds.register(app)
guard_cmd.register(app)
triage_cmd.register(app)
report_cmd.register(app)
advise_cmd.register(app)


def main() -> None:
    try:
        code = typer.main.get_command(app).main(standalone_mode=False, prog_name="lpmsim")
    except (typer.Abort, KeyboardInterrupt):
        err_console.print(plain("error: interrupted", "bold red"))
        code = 130
    except Exception as exc:
        # click's usage errors (unknown command or option, bad value: a ClickException, which
        # typer vendors); anything else is a bug and propagates with its traceback.
        fmt, exit_code = getattr(exc, "format_message", None), getattr(exc, "exit_code", None)
        if not callable(fmt) or not isinstance(exit_code, int):
            raise
        code = exit_code
        if type(exc).__name__ != "NoArgsIsHelpError":  # `lpmsim` alone: the help was printed
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            err_console.print(plain("error: ", "bold red") + plain(f"{fmt()}{hint}"))
    sys.exit(code if isinstance(code, int) else 0)

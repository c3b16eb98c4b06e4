"""The ``lpmsim`` console script.

Each command group lives in its own module with a ``register(app)`` function; this module only
assembles them, so that ``lpmsim --help`` stays the one table of contents of the CLI.
"""

from __future__ import annotations

import typer

from lpmsim.cli import compare_cmd, guard_cmd, policies_cmd, run_cmd, scenario_cmds, sweep_cmd, triage_cmd

app = typer.Typer(
    name="lpmsim",
    help="Simulate what a Linux guest's lockup detectors do while an IBM Power partition is live-migrated.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

run_cmd.register(app)
compare_cmd.register(app)
sweep_cmd.register(app)
policies_cmd.register(app)
scenario_cmds.register(app)
guard_cmd.register(app)
triage_cmd.register(app)


def main() -> None:
    app()

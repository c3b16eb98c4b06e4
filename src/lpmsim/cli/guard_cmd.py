"""``lpmsim guard ...``: the same argparse implementation as the ``lpmsim-guard`` console script.

``lpmsim guard install --root X`` == ``lpmsim-guard install --root X``; everything after ``guard`` is passed
through untouched (including ``--help``), so there is one implementation and one set of options.
"""

from __future__ import annotations

import typer


def guard(ctx: typer.Context) -> None:
    """Apply a mitigation on a real partition around a live migration (drmgr hook); see --help."""
    from lpmsim.guard.hook import run

    code = run(list(ctx.args), prog="lpmsim guard")
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(
        "guard",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        add_help_option=False,
    )(guard)

"""Shared CLI plumbing: scenario options, the one-line error convention (exit code 2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from lpmsim.config.loader import ScenarioError, load_scenario
from lpmsim.config.scenario import Scenario
from lpmsim.outputs.text import plain

EXIT_USAGE = 2

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False)

F = TypeVar("F", bound=Callable[..., Any])

ScenarioArg = Annotated[
    Path | None,
    typer.Argument(help="Scenario TOML file (default: the built-in 'default' preset).", show_default=False),
]
PresetOpt = Annotated[
    str | None, typer.Option("--preset", "-p", help="Start from a named preset (see `lpmsim presets`).")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a field, e.g. --set platform.link_gbps=25 (repeatable).",
        metavar="FIELD=VALUE",
    ),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Override sim.seed.")]


def error_line(message: str) -> None:
    """Print ``error: MESSAGE`` on stderr; the message is text (never markup, controls made visible)."""
    err_console.print(plain("error: ", "bold red") + plain(message))


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """One line on stderr and exit ``code`` (2: bad usage or input).  ``message`` is plain text:
    file names, values and names from the user in it are printed as written, not as markup."""
    error_line(message)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn ScenarioError (bad input) into one line on stderr and exit code 2."""
    try:
        yield
    except ScenarioError as exc:
        fail(str(exc))


def get_scenario(
    file: Path | None, preset: str | None, overrides: list[str] | None, seed: int | None = None
) -> Scenario:
    with user_errors():
        return load_scenario(file, preset, overrides or (), seed)
    raise AssertionError("unreachable")  # pragma: no cover

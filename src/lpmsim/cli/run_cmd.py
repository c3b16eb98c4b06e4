"""``lpmsim run``: simulate one scenario and print its summary."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Filled in together with the runner."""

"""``lpmsim policies``: the mitigation-policy registry, with each policy's options."""

from __future__ import annotations

import typer
from rich.table import Table

from lpmsim.cli.common import out_console
from lpmsim.outputs.text import plain, print_sized
from lpmsim.policies.spec import REGISTRY


def policies() -> None:
    """List the mitigation policies (scenario field mitigation.policy, compare --variant)."""
    table = Table(title="lpmsim policies (join with '+'; see docs/policies.md)", show_lines=True)
    for col in ("policy", "what it does", "options (default)", "from"):
        table.add_column(col, overflow="fold")
    for info in REGISTRY.values():
        name = info.name if info.arg is None else f"{info.name}:{info.arg}"
        opts = "\n".join(f"{o.name}={o.default} {o.unit}".rstrip(" -") for o in info.options) or "–"
        table.add_row(plain(name), plain(info.summary), plain(opts), plain(info.source))
    print_sized(out_console, table, str(table.title))


def register(app: typer.Typer) -> None:
    app.command()(policies)

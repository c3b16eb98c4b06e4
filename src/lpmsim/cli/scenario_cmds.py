"""``lpmsim presets``, ``lpmsim validate``, ``lpmsim explain``: working with scenario files."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from lpmsim.cli.common import PresetOpt, ScenarioArg, SetOpt, fail, get_scenario, out_console, user_errors
from lpmsim.config.explain import field_docs, reference_markdown
from lpmsim.config.loader import preset_names, preset_text, resolve_scenario


def presets(
    show: Annotated[str | None, typer.Option("--show", help="Print the preset's TOML.")] = None,
) -> None:
    """List the named presets (or print one with --show)."""
    if show is not None:
        with user_errors():
            out_console.print(preset_text(show), markup=False, end="")
        return
    table = Table(title="lpmsim presets")
    for col in ("preset", "vCPUs", "memory", "link", "mode", "description"):
        table.add_column(col)
    for name in preset_names():
        sc = get_scenario(None, name, None)
        with user_errors():
            desc = str(resolve_scenario(preset=name).get("description", ""))
        table.add_row(
            name,
            str(sc.partition.vcpus),
            f"{sc.partition.memory_gib:g} GiB",
            f"{sc.platform.link_gbps:g} Gb/s",
            sc.sim.mode,
            desc,
        )
    out_console.print(table)


def validate(
    file: ScenarioArg = None,
    preset: PresetOpt = None,
    overrides: SetOpt = None,
    show: Annotated[bool, typer.Option("--show", help="Print the fully resolved scenario as JSON.")] = False,
) -> None:
    """Check a scenario file (with its base preset and overrides); exit code 2 if it is invalid."""
    if file is None and preset is None:
        fail("validate: give a scenario FILE or --preset NAME")
    sc = get_scenario(file, preset, overrides)
    if show:
        out_console.print_json(json.dumps(sc.model_dump(mode="json")))
    else:
        out_console.print(
            f"[green]ok[/]: {file or 'preset ' + str(preset)} ({sc.name}: {sc.partition.vcpus} vCPUs, "
            f"{sc.partition.memory_gib:g} GiB, {sc.total_pages:,} pages of {sc.platform.page_kib} KiB)"
        )


def explain(
    field: Annotated[
        str | None, typer.Argument(help="A field path such as platform.rtt_us or a section name.")
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the whole reference as Markdown.")
    ] = False,
) -> None:
    """Describe scenario fields: unit, default and meaning."""
    if markdown:
        sys.stdout.write(reference_markdown())
        return
    docs = field_docs()
    if field is not None:
        docs = [d for d in docs if d.path == field or d.path.startswith(field + ".")]
        if not docs:
            fail(f"{field}: unknown field (try `lpmsim explain` for the list)")
    table = Table(show_lines=False)
    for col in ("field", "unit", "default", "meaning"):
        table.add_column(col, overflow="fold")
    for d in docs:
        table.add_row(d.path, d.unit, d.default, d.description)
    out_console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(presets)
    app.command()(validate)
    app.command()(explain)

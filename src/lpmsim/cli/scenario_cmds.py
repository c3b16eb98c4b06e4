"""``lpmsim presets``, ``lpmsim validate``, ``lpmsim explain``: working with scenario files.

Everything printed here that comes from a file, a preset or the schema's documentation is text:
table cells are ``rich`` Text objects (never parsed as markup), a preset's TOML is written to
stdout byte for byte (valid TOML when piped).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from lpmsim.cli.common import PresetOpt, ScenarioArg, SetOpt, fail, get_scenario, out_console, user_errors
from lpmsim.config.explain import field_docs, reference_markdown
from lpmsim.config.loader import preset_names, preset_text, resolve_scenario
from lpmsim.config.memory import exact_memory_note
from lpmsim.outputs.text import json_text, plain, print_sized


def presets(
    show: Annotated[
        str | None, typer.Option("--show", help="Print the preset's TOML (verbatim: redirect it to a file).")
    ] = None,
) -> None:
    """List the named presets (or print one with --show)."""
    if show is not None:
        with user_errors():
            text = preset_text(show)
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    table = Table(title="lpmsim presets")
    for col in ("preset", "vCPUs", "memory", "link", "mode", "description"):
        table.add_column(col)
    for name in preset_names():
        sc = get_scenario(None, name, None)
        with user_errors():
            desc = str(resolve_scenario(preset=name).get("description", ""))
        table.add_row(
            plain(name),
            f"{sc.partition.vcpus:,}",
            f"{sc.partition.memory_gib:g} GiB",
            f"{sc.platform.link_gbps:g} Gb/s",
            sc.sim.mode,
            plain(desc),
        )
    print_sized(out_console, table, "lpmsim presets")


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
        sys.stdout.write(json_text(sc.model_dump(mode="json")))
        return
    what = str(file) if file is not None else f"preset {preset}"
    line = Text("ok", style="green") + plain(
        f": {what} ({sc.name}: {sc.partition.vcpus:,} vCPUs, {sc.partition.memory_gib:g} GiB, "
        f"{sc.total_pages:,} pages of {sc.platform.page_kib} KiB, {sc.sim.mode} mode{exact_memory_note(sc)})"
    )
    out_console.print(line, soft_wrap=True)
    if sc.description:
        out_console.print(plain(f"  {sc.description}"), soft_wrap=True)


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
        # bugs.window_s and bugs[].window_s name the same field; a section lists its fields
        want = field.replace("[]", "")
        docs = [d for d in docs if (key := d.path.replace("[]", "")) == want or key.startswith(want + ".")]
        if not docs:
            fail(f"{field}: unknown field (try `lpmsim explain` for the list)")
    table = Table(show_lines=False)
    for col in ("field", "unit", "default", "meaning"):
        table.add_column(col, overflow="fold")
    for d in docs:
        table.add_row(plain(d.path), plain(d.unit), plain(d.default), plain(d.description))
    print_sized(out_console, table)


def register(app: typer.Typer) -> None:
    app.command()(presets)
    app.command()(validate)
    app.command()(explain)

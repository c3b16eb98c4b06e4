"""The reference pages of the documentation site, generated from the code at each build.

CLI (docs/reference/cli.md):

``command()`` is the click command that typer builds from ``lpmsim.cli.main.app`` (the one
``lpmsim`` runs); ``reference_markdown()`` renders every command of it (usage, help, arguments
and options, with their defaults) as Markdown.  The documentation site's build hook
(``docs/_hooks/lpmsim_docs.py``) puts that text into the CLI reference page at each build, so the
page cannot drift from the code.  ``lpmsim guard`` hands its arguments to the standard-library
parser of the drmgr hook (``lpmsim.guard.hook.build_parser``); its help is rendered from there.

Only click's public interface is used (``params``, ``get_help_record``, ``get_usage``,
``list_commands``), which typer's commands share whichever click they are built on.

API (docs/reference/api.md): ``api_reference_markdown()`` writes one mkdocstrings directive per
name of ``lpmsim.__all__`` (functions first, then types), which mkdocstrings renders from the
signatures and docstrings: a name added to ``__all__`` is documented at the next build.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
from typing import Any

import typer

# Markdown's inline specials outside code spans; "<" and ">" would start HTML.
_SPECIAL = re.compile(r"([\\*_\[\]])")


def command() -> Any:
    """The click command behind ``lpmsim`` (a group; ``Any`` because typer may vendor click)."""
    from lpmsim.cli.main import app

    return typer.main.get_command(app)


def _text(s: str) -> str:
    """Help text as Markdown: backtick spans kept as code, everything else escaped."""
    parts = s.split("`")
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 1 and i < len(parts) - 1:  # inside a closed code span
            out.append(f"`{part}`")
        else:
            part = _SPECIAL.sub(r"\\\1", part)
            out.append(part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    return "".join(out)


def _help_blocks(help_text: str) -> list[str]:
    """A command's help as Markdown blocks: paragraphs, and ``Example: CMD`` as a code block."""
    blocks: list[str] = []
    for para in help_text.strip().split("\n\n"):
        para = para.strip()
        if para.startswith("Example:"):
            blocks.append("Example:")
            blocks.append("```sh\n" + para.removeprefix("Example:").strip() + "\n```")
        elif para:
            blocks.append(_text(" ".join(line.strip() for line in para.splitlines())))
    return blocks


def _params(cmd: Any, ctx: Any) -> list[str]:
    lines = []
    for param in cmd.get_params(ctx):  # with the help option
        if getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is None:  # an argument without help text
            record = (param.human_readable_name, "")
        spec, help_text = record
        lines.append(f"- `{spec}`" + (f": {_text(help_text)}" if help_text else ""))
    return lines


def _click_section(cmd: Any, name: str, parent: Any, level: int) -> list[str]:
    ctx = cmd.context_class(cmd, info_name=name, parent=parent, **cmd.context_settings)
    blocks = [f"{'#' * level} `{ctx.command_path}`"]
    blocks += _help_blocks(cmd.help or "")
    blocks.append("```text\n" + cmd.get_usage(ctx).strip() + "\n```")
    subs = [
        n for n in getattr(cmd, "list_commands", lambda _c: [])(ctx) if not cmd.get_command(ctx, n).hidden
    ]
    if subs:
        blocks.append(
            "\n".join(
                f"- [`{ctx.command_path} {n}`](#{_slug(ctx.command_path + ' ' + n)}): "
                f"{_text(cmd.get_command(ctx, n).get_short_help_str(limit=200))}"
                for n in subs
            )
        )
    blocks.append("\n".join(_params(cmd, ctx)))
    for n in subs:
        sub = cmd.get_command(ctx, n)
        if n == "guard":
            blocks += _guard_section(ctx.command_path + " guard", level)
        else:
            blocks += _click_section(sub, n, ctx, level)
    return blocks


def _slug(heading: str) -> str:
    """The anchor MkDocs' toc gives a heading ``` `lpmsim run` ```: lower case, words joined by '-'."""
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def _argparse_help(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=100)
    return parser.format_help().strip()


def _guard_section(path: str, level: int) -> list[str]:
    from lpmsim.guard.hook import build_parser

    parser = build_parser(prog=path)
    blocks = [
        f"{'#' * level} `{path}`",
        _text(
            "Runs the drmgr hook's own command line (the console script `lpmsim-guard`, standard "
            "library only): `lpmsim guard ARGS` is `lpmsim-guard ARGS`. Its help, per command:"
        ),
        "```text\n" + _argparse_help(parser) + "\n```",
    ]
    for action in parser._actions:  # argparse keeps its sub-commands here, and only here
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                if sub_name.startswith("_"):  # internal (the detached restorer)
                    continue
                blocks.append(f"{'#' * (level + 1)} `{path} {sub_name}`")
                blocks.append("```text\n" + _argparse_help(sub) + "\n```")
    return blocks


def reference_markdown(level: int = 2) -> str:
    """Every ``lpmsim`` command as Markdown, its headings at ``level`` (``##``: one per command)."""
    root = command()
    return "\n\n".join(_click_section(root, "lpmsim", None, level)) + "\n"


# lpmsim.triage is the triage package made callable; the function it calls is what is documented.
API_TARGETS = {"triage": "lpmsim.api.triage.triage"}


def api_reference_markdown() -> str:
    """A mkdocstrings directive per public name of ``lpmsim`` (``### lpmsim.NAME`` each)."""
    lpmsim = importlib.import_module("lpmsim")
    names = [n for n in lpmsim.__all__ if not n.startswith("_")]
    types = [n for n in names if inspect.isclass(getattr(lpmsim, n))]
    blocks: list[str] = []
    for title, group in (("Functions", [n for n in names if n not in types]), ("Types", types)):
        blocks.append(f"## {title}")
        for name in group:
            blocks.append(
                f"::: {API_TARGETS.get(name, f'lpmsim.{name}')}\n"
                f"    options:\n      heading: lpmsim.{name}\n      toc_label: lpmsim.{name}\n      heading_level: 3"
            )
    return "\n\n".join(blocks) + "\n"

"""MkDocs build hook (mkdocs.yml ``hooks:``): the reference pages stay current with the code.

- A page with the line ``<!-- lpmsim: cli-reference -->`` gets, in its place, every ``lpmsim``
  command rendered from the commands themselves (``lpmsim.cli.docs.reference_markdown``).
- A page with the line ``<!-- lpmsim: api-reference -->`` gets one mkdocstrings directive per name
  of ``lpmsim.__all__`` (functions first, then types), which mkdocstrings renders from the
  docstrings and signatures: a name added to ``__all__`` is documented at the next build.
"""

from __future__ import annotations

import inspect
from typing import Any

import lpmsim
from lpmsim.cli.docs import reference_markdown

CLI_MARKER = "<!-- lpmsim: cli-reference -->"
API_MARKER = "<!-- lpmsim: api-reference -->"

# lpmsim.triage is the triage package made callable; the function it calls is documented.
_TARGET = {"triage": "lpmsim.api.triage.triage"}


def api_reference_markdown() -> str:
    names = [n for n in lpmsim.__all__ if not n.startswith("_")]
    types = [n for n in names if inspect.isclass(getattr(lpmsim, n))]
    blocks = ["## Functions"]
    for group in ([n for n in names if n not in types], ["## Types"], types):
        for name in group:
            if name.startswith("#"):
                blocks.append(name)
                continue
            target = _TARGET.get(name, f"lpmsim.{name}")
            blocks.append(
                f"::: {target}\n    options:\n      heading: lpmsim.{name}\n      toc_label: lpmsim.{name}\n"
                "      heading_level: 3"
            )
    return "\n\n".join(blocks) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, reference_markdown())
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, api_reference_markdown())
    return markdown

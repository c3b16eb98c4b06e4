"""MkDocs build hook (mkdocs.yml ``hooks:``): the reference pages stay current with the code.

A page line ``<!-- lpmsim: cli-reference -->`` becomes every ``lpmsim`` command, rendered from the
commands themselves; ``<!-- lpmsim: api-reference -->`` becomes one mkdocstrings directive per name
of ``lpmsim.__all__`` (both from ``lpmsim.cli.docs``).
"""

from __future__ import annotations

from typing import Any

from lpmsim.cli.docs import api_reference_markdown, reference_markdown

MARKERS = {
    "<!-- lpmsim: cli-reference -->": reference_markdown,
    "<!-- lpmsim: api-reference -->": api_reference_markdown,
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    for marker, render in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown

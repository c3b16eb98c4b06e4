"""The fenced code blocks of the documentation pages, with their ``docs-test`` markers.

A block's marker is an HTML comment (invisible on the site) on the nearest non-blank line above
its opening fence (docs/reference/docs-tests.md):

- no marker, language ``sh``: the block is run (``tests/docs/test_docs_commands.py``);
- ``<!-- docs-test: parse-only REASON -->``: every ``lpmsim`` command of the block is parsed by the
  CLI's own parser (an unknown command or option, or a bad value fails), its variants and scenario
  checked as the command would before running, but not run;
- ``<!-- docs-test: skip REASON -->``: not run at all (a real partition, a cluster, a synopsis);
- ``<!-- docs-test: output -->`` on a ``text`` block right after a run block: what that block
  prints on stdout (compared with whitespace runs collapsed; ``…`` matches any text).
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<kind>[\w-]+)\s*(?P<reason>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<lang>[\w+-]*)")
KINDS = ("skip", "parse-only", "output")
# Shell-like languages that are not collected: a command block must say ``sh``.
SHELL_ALIASES = ("bash", "shell", "console", "zsh", "shell-session")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    marker: str | None  # a MARKER line's kind, or an unknown word as written
    reason: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(REPO).as_posix()}:{self.line}"


def page_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = len(m["indent"]), m["fence"], m["lang"]
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1  # the closing fence
        marker, reason = None, ""
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (mm := MARKER.match(lines[j])):
            marker, reason = mm["kind"], mm["reason"]
        blocks.append(Block(page, start + 1, lang, "\n".join(body) + "\n", marker, reason))
    return blocks


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)


def all_blocks() -> list[Block]:
    return [b for p in pages() for b in page_blocks(p)]


def command_blocks() -> list[Block]:
    """The ``sh`` blocks: the docs' commands."""
    return [b for b in all_blocks() if b.lang == "sh"]


def output_after(block: Block) -> Block | None:
    """The ``output`` block that follows ``block`` on its page, if the next block is one."""
    blocks = page_blocks(block.page)
    for a, b in itertools.pairwise(blocks):
        if a.line == block.line:
            return b if b.marker == "output" else None
    return None


def lpmsim_commands(script: str) -> list[list[str]]:
    """The ``lpmsim`` command lines of a shell script, as argument lists (without ``lpmsim``).

    Continuation lines are joined, comments dropped; a line is cut into commands at ``|``, ``&&``,
    ``||``, ``;`` and ``&``, and redirections are dropped.  ``.venv/bin/lpmsim`` counts too.
    """
    commands = []
    for logical in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(logical, posix=True, punctuation_chars="|&;<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        segment: list[str] = []
        tokens = [*list(lexer), ";"]
        skip_next = False
        for tok in tokens:
            if skip_next:
                skip_next = False
                continue
            if tok in ("|", "||", "&&", ";", "&"):
                if segment and (segment[0] == "lpmsim" or segment[0].endswith("/lpmsim")):
                    commands.append(segment[1:])
                segment = []
            elif tok in (">", ">>", "<", "2>", "&>"):
                skip_next = True
            else:
                segment.append(tok)
    return commands

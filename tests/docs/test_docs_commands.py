"""Every command in the documentation runs (or is parsed by the CLI), so the docs cannot drift.

The ``sh`` blocks of docs/**/*.md are collected by ``blocks.py``; the markers are described there
and, for contributors, in docs/reference/docs-tests.md.  A page's run blocks are bash scripts (``set -euo
pipefail``) run in order in one fresh directory that mirrors the source tree (symbolic links to the
repository's ``src``, ``scripts``, ``examples``, ``tests``, ``pyproject.toml`` and the virtual
environment running the tests as ``.venv``), with ``lpmsim`` on ``PATH``: each must exit 0, and
print what the ``output`` block after it shows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .blocks import (
    DOCS,
    KINDS,
    REPO,
    SHELL_ALIASES,
    Block,
    all_blocks,
    command_blocks,
    lpmsim_commands,
    output_after,
    page_blocks,
)

RUN = [b for b in command_blocks() if b.marker is None]
RUN_PAGES = sorted({b.page for b in RUN})
PARSE = [b for b in command_blocks() if b.marker == "parse-only"]
TIMEOUT_S = 600
# Pages whose purpose is to be followed step by step: each has commands that the tests run.
STEP_BY_STEP = [
    "getting-started.md",
    *sorted(p.name for p in (DOCS / "howto").glob("*.md") if p.name != "index.md"),
]


def _scripts_ready() -> bool:
    """scripts/* install into ./.venv on first use; they run here only if that is this venv, set up."""
    venv = REPO / ".venv"
    if not venv.exists() or Path(sys.prefix).resolve() != venv.resolve():
        return False
    stamps = [venv / ".installed-dev", venv / ".installed-run"]
    newest = (REPO / "pyproject.toml").stat().st_mtime
    return any(s.exists() and s.stat().st_mtime >= newest for s in stamps)


def _sandbox(tmp: Path) -> Path:
    for name in ("src", "scripts", "examples", "tests", "benchmarks", "pyproject.toml", "README.md"):
        (tmp / name).symlink_to(REPO / name)
    (tmp / ".venv").symlink_to(Path(sys.prefix))
    return tmp


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TERM"] = "dumb"
    return env


def _matches(expected: str, actual: str) -> bool:
    """Equal with whitespace runs collapsed; ``…`` in ``expected`` stands for any text."""
    squash = lambda s: " ".join(s.split())  # noqa: E731
    pattern = ".*?".join(re.escape(part) for part in squash(expected).split("…"))
    return re.fullmatch(pattern, squash(actual), flags=re.S) is not None


def test_markers_are_known_and_explained() -> None:
    problems = []
    for b in all_blocks():
        if b.lang in SHELL_ALIASES:
            problems.append(f"{b.id}: a `{b.lang}` block is not collected: write ```sh")
        if b.marker is not None and b.marker not in KINDS:
            problems.append(f"{b.id}: unknown docs-test marker {b.marker!r} (known: {', '.join(KINDS)})")
        if b.marker in ("skip", "parse-only") and not b.reason:
            problems.append(f"{b.id}: `docs-test: {b.marker}` needs a reason: why it cannot run here")
        if b.marker in ("skip", "parse-only") and b.lang != "sh":
            problems.append(f"{b.id}: `docs-test: {b.marker}` on a `{b.lang}` block (only sh blocks run)")
    for page in sorted({b.page for b in all_blocks()}):
        blocks = page_blocks(page)
        for prev, b in zip([None, *blocks], blocks, strict=False):
            if b.marker == "output" and (prev is None or prev.lang != "sh" or prev.marker is not None):
                problems.append(f"{b.id}: an output block must follow a run block (sh, no marker)")
    assert not problems, "\n".join(problems)


def test_the_step_by_step_pages_have_commands_that_run() -> None:
    run_pages = {b.page.name for b in RUN}
    assert [p for p in STEP_BY_STEP if p not in run_pages] == []
    assert len(STEP_BY_STEP) >= 5  # getting-started and the four how-to guides


@pytest.mark.parametrize("page", RUN_PAGES, ids=[p.relative_to(DOCS).as_posix() for p in RUN_PAGES])
def test_the_commands_of_the_page_run(page: Path, tmp_path: Path) -> None:
    """The page's run blocks, in order, in one directory: a block may use what an earlier one wrote."""
    blocks = [b for b in RUN if b.page == page]
    if any("scripts/" in b.text for b in blocks) and not _scripts_ready():
        pytest.skip("scripts/ run only in the ./.venv they set up (run the tests with scripts/test)")
    sandbox = _sandbox(tmp_path)
    for block in blocks:
        res = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.text],
            cwd=sandbox,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        assert res.returncode == 0, (
            f"{block.id}: exit {res.returncode}\n{block.text}\n{res.stdout}\n{res.stderr}"
        )
        expected = output_after(block)
        if expected is not None:
            assert _matches(expected.text, res.stdout), (
                f"{expected.id} no longer shows what {block.id} prints. Its output now:\n{res.stdout}\n"
                "Paste it into the page (keep `…` where the text varies, e.g. wall times), then re-read "
                "the explanation below the block: its figures come from that output."
            )


def _parse_problems(block: Block) -> list[str]:
    """Each ``lpmsim`` command of the block, parsed by the CLI's own parsers: what they refuse."""
    from lpmsim.cli.docs import command
    from lpmsim.guard.hook import build_parser

    root = command()
    root_ctx = root.context_class(root, info_name="lpmsim")
    problems = []
    for args in lpmsim_commands(block.text):
        line = f"{block.id}: `lpmsim {' '.join(args)}`"
        if args and args[0].startswith("-"):  # an option of `lpmsim` itself (--version, --help)
            if not any(args[0] in p.opts for p in root.get_params(root_ctx)):
                problems.append(f"{line}: no such option")
            continue
        sub = root.get_command(root_ctx, args[0]) if args else None
        if sub is None:
            problems.append(f"{line}: no such command")
        elif args[0] == "guard":  # the drmgr hook's own (argparse) command line
            try:
                build_parser(prog="lpmsim guard").parse_args(args[1:])
            except SystemExit as exc:
                problems.append(f"{line}: does not parse (exit {exc.code})")
        else:
            try:
                ctx = sub.make_context(args[0], args[1:], parent=root_ctx)
            except Exception as exc:
                fmt = getattr(exc, "format_message", None)
                problems.append(f"{line}: {fmt() if callable(fmt) else exc}")
                continue
            problems += [f"{line}: {p}" for p in _scenario_problems(args[0], ctx.params)]
    return problems


def _scenario_problems(cmd: str, params: dict[str, Any]) -> list[str]:
    """What the command would refuse before running: its variants, and its scenario (a preset, or a
    file of the source tree; a file the page creates first is not there to check)."""
    from lpmsim.config.loader import ScenarioError, build_scenario, resolve_scenario
    from lpmsim.sweeps.variants import VariantError, parse_variants, variant_scenario

    if cmd not in ("run", "compare", "validate"):
        return []
    try:
        variants = parse_variants(params.get("variants") or ())
        path = params.get("file")
        if path is not None:
            path = path if path.is_absolute() else REPO / path
            if not path.exists():
                return []
        base = resolve_scenario(path, params.get("preset"), params.get("overrides") or ())
        if variants:
            for v in variants:
                variant_scenario(base, v)
        else:
            build_scenario(base)
    except (ScenarioError, VariantError) as exc:
        return [str(exc)]
    return []


@pytest.mark.parametrize("block", PARSE, ids=[b.id for b in PARSE])
def test_the_command_block_parses(block: Block) -> None:
    assert lpmsim_commands(block.text), f"{block.id}: a parse-only block without an lpmsim command (use skip)"
    assert _parse_problems(block) == []


def test_the_readme_commands_parse() -> None:
    """README.md's tour of the CLI (its runnable commands are run by scripts/check-wheel)."""
    blocks = [b for b in page_blocks(REPO / "README.md") if b.lang == "sh"]
    assert sum(len(lpmsim_commands(b.text)) for b in blocks) >= 10
    assert [p for b in blocks for p in _parse_problems(b)] == []


def test_the_matcher_and_the_parser_can_fail() -> None:
    assert _matches("a  b\nc … e", "a b c dd e")
    assert not _matches("a b c", "a b d")
    assert lpmsim_commands("lpmsim run --json | python3 -c 'x' # c\n.venv/bin/lpmsim presets > f\n") == [
        ["run", "--json"],
        ["presets"],
    ]
    bad = Block(
        DOCS / "x.md",
        1,
        "sh",
        "lpmsim compare --nope\nlpmsim nosuch\nlpmsim guard --bogus\n"
        "lpmsim compare -p small -V a=nmi-factor:x\nlpmsim run -p small --set platform.no_such=1\n",
        None,
        "",
    )
    assert len(_parse_problems(bad)) == 5
    from lpmsim.cli.docs import command

    root = command()
    ctx = root.context_class(root, info_name="lpmsim")
    with pytest.raises(Exception, match="No such option"):
        root.get_command(ctx, "compare").make_context("compare", ["--no-such-option"], parent=ctx)

"""The documentation site builds with ``mkdocs build --strict`` (a broken link, anchor or reference
fails), and its generated reference pages cover every command and every public name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import lpmsim
from lpmsim.cli.docs import API_TARGETS, command, reference_markdown

from .blocks import REPO


def _commands() -> list[str]:
    root = command()
    ctx = root.context_class(root, info_name="lpmsim")
    return [f"lpmsim {name}" for name in root.list_commands(ctx)]


def test_the_cli_reference_has_every_command_and_option() -> None:
    text = reference_markdown()
    for name in _commands():
        assert f"## `{name}`" in text
    for flag in ("--variant NAME=POLICY", "--report-only DIR", "--calibrate", "--markdown", "--dry-run"):
        assert flag in text
    for sub in ("install", "uninstall", "status", "restore", "run-phase"):  # lpmsim guard's own parser
        assert f"### `lpmsim guard {sub}`" in text
    assert "_restorer" not in text  # internal: not documented


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(REPO / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=REPO,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for name in _commands():
        assert f'id="{re.sub(r"[^a-z0-9]+", "-", name)}"' in cli, name
    api = (site / "reference" / "api" / "index.html").read_text()
    for name in lpmsim.__all__:
        if not name.startswith("_"):
            target = API_TARGETS.get(name, f"lpmsim.{name}")
            assert f'id="{target}"' in api, name  # mkdocstrings' anchor of the object
    assert (site / "getting-started" / "index.html").exists()

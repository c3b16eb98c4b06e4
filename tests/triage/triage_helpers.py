"""Shared helpers of the triage tests: the labelled corpora under tests/data/triage."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "triage"
INDEXES = ("INDEX.toml", "extra/INDEX.toml", "pasted/INDEX.toml")


def load_index(name: str) -> dict[str, dict[str, Any]]:
    path = DATA / name
    with path.open("rb") as fh:
        files: dict[str, dict[str, Any]] = tomllib.load(fh)["files"]
    return {str(path.parent / fname): entry for fname, entry in files.items()}


def all_labelled() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for name in INDEXES:
        if (DATA / name).exists():
            out.extend(sorted(load_index(name).items()))
    return out

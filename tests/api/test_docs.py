"""The notebook session in docs/api.md runs, and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOC = Path(__file__).parent.parent.parent / "docs" / "api.md"


def test_the_notebook_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], str(DOC), "exec"), {})  # the documented code, run as written
    lines = out.getvalue().splitlines()
    assert lines[0] == "survived"
    assert lines[1] == "hardlockup (4,) bug:0"
    assert "['before_suspend', 'suspend', 'transfer', 'after_transfer']" in lines

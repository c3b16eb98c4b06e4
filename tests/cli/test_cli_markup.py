"""Text from outside is text (issue 11, section 2): markup, ESC and control characters fed through
every command this module lists reach the terminal as visible characters, never as markup (no
``MarkupError``, no swallowed ``[bold red]``) and never as raw terminal control.

To cover another command, add a builder to ``CASES``: it gets the hostile string and a scratch
directory and returns the command's arguments; ``echoed`` says whether the command's output must
show the string (as ``visible`` spells it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpmsim.cli.main import app
from lpmsim.outputs.text import visible

HOSTILE = [
    "[/bold]",
    "[bold red]loud[/]",
    "[/x]",
    "[link=file:///etc/passwd]x[/link]",
    "esc\x1b[31mred\x1b[0m",
    "bell\x07back\x08cr\rdel\x7fcsi\x9b2J",
    "trailing\\",
]

FAST = ["--set", "sim.max_time_s=3", "--set", "sim.mode=fluid"]


@dataclass(frozen=True)
class Case:
    build: Callable[[str, Path], list[str]]
    echoed: bool = True
    codes: tuple[int, ...] = (0, 2)


def _file(tmp: Path, name: str, content: str) -> Path:
    # A name with "/" is a path through directories, as the shell would take it: "[/x].toml" is
    # the file "x].toml" in the directory "[".
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(content, encoding="utf-8")
    return p


def _toml_str(h: str) -> str:
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in h) + '"'


def _compare(out: Path, variant: str) -> list[str]:
    """One fast one-run comparison of ``variant`` into ``out``."""
    return [
        "compare",
        "--preset",
        "small",
        *FAST,
        "-n",
        "1",
        "-j",
        "1",
        "-q",
        "-o",
        str(out),
        "--variant",
        variant,
    ]


CASES: dict[str, Case] = {
    "run --set name": Case(lambda h, t: ["run", "--preset", "small", *FAST, "--set", f"name={_toml_str(h)}"]),
    "run file name and description": Case(
        lambda h, t: [
            "run",
            str(_file(t, "s.toml", f'base = "small"\nname = {_toml_str(h)}\ndescription = {_toml_str(h)}\n')),
            *FAST,
        ]
    ),
    "run file named so": Case(
        lambda h, t: ["run", str(_file(t, h.replace("\x00", "") + ".toml", 'base = "small"\n')), *FAST]
    ),
    "run base": Case(lambda h, t: ["run", str(_file(t, "b.toml", f"base = {_toml_str(h)}\n"))]),
    "run missing path": Case(lambda h, t: ["run", str(t / "nowhere" / h)]),
    "run --preset": Case(lambda h, t: ["run", "--preset", h]),
    # pydantic does not repeat a refused literal; the field path is what the line names
    "run --set bad value": Case(
        lambda h, t: ["run", "--preset", "small", "--set", f"sim.mode={h}"], echoed=False, codes=(2,)
    ),
    "run --set bad field": Case(lambda h, t: ["run", "--preset", "small", "--set", f"{h}=1"], echoed=False),
    "validate file named so": Case(lambda h, t: ["validate", str(_file(t, h + ".toml", 'base = "small"\n'))]),
    "validate base": Case(lambda h, t: ["validate", str(_file(t, "b.toml", f"base = {_toml_str(h)}\n"))]),
    "validate policy": Case(
        lambda h, t: ["validate", "--preset", "small", "--set", f"mitigation.policy={_toml_str(h)}"],
        echoed=False,
        codes=(2,),
    ),
    "validate --show name": Case(
        lambda h, t: ["validate", "--preset", "small", "--show", "--set", f"name={_toml_str(h)}"]
    ),
    "explain": Case(lambda h, t: ["explain", h]),
    "presets --show": Case(lambda h, t: ["presets", "--show", h]),
    "presets": Case(lambda h, t: ["presets"], echoed=False, codes=(0,)),
    "policies": Case(lambda h, t: ["policies"], echoed=False, codes=(0,)),
    # a hung task's process name is whatever any local user named the process
    "triage log text": Case(
        lambda h, t: [
            "triage",
            str(
                _file(
                    t,
                    "console.log",
                    f"[  100.000000] INFO: task {h}:123 blocked for more than 120 seconds.\n"
                    f"[  101.000000] watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [{h}:77]\n",
                )
            ),
        ],
        echoed=False,
        codes=(0, 1),
    ),
    "compare variant name": Case(lambda h, t: _compare(t / "c", f"{h}=none"), codes=(0, 2)),
    "compare bad policy": Case(
        lambda h, t: ["compare", "--preset", "small", "-o", str(t / "c"), "--variant", f"a={h}"],
        echoed=False,
        codes=(2,),
    ),
    "compare out named so": Case(lambda h, t: _compare(_file(t, "f", "") / h, "a=none"), codes=(2,)),
    "triage file named so": Case(lambda h, t: ["triage", str(_file(t, h + ".log", "nothing here\n"))]),
    "triage missing path": Case(lambda h, t: ["triage", str(t / "nowhere" / h)], codes=(2,)),
}


def _check(h: str, code: int, out: str, err: str, case: Case) -> None:
    text = out + err
    assert code in case.codes, (code, text)
    assert "Traceback" not in text and "MarkupError" not in text, text
    for raw in ("\x1b", "\x07", "\x08", "\r", "\x7f", "\x9b"):
        assert raw not in text, (repr(raw), text)
    if case.echoed:
        # the string is shown as written (its control characters spelled \xNN); a file name with
        # "/" shows its last part at least
        # (or as Python's repr spells it, in messages that quote a name with !r)
        want = (visible(h), repr(h)[1:-1], visible(h.rsplit("/", 1)[-1]), json.dumps(h)[1:-1])
        assert any(w in text for w in want), (want, text)


@pytest.mark.parametrize("h", HOSTILE, ids=[repr(h) for h in HOSTILE])
@pytest.mark.parametrize("name", list(CASES))
def test_external_text_is_printed_as_text(name: str, h: str, tmp_path: Path) -> None:
    case = CASES[name]
    if "\x00" in h:
        pytest.skip("no NUL in arguments")
    try:
        args = case.build(h, tmp_path)
    except OSError:
        pytest.skip("this file system refuses the name")
    res = CliRunner().invoke(app, args)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    _check(h, res.exit_code, res.stdout, res.stderr, case)


# Top-level errors go through lpmsim.cli.main.main (click's usage errors), so run the real command.
TOP = {
    "unknown command": lambda h: [h],
    "bad option value": lambda h: ["run", "--seed", h],
    "unknown option": lambda h: ["run", f"--{h}"],
}


@pytest.mark.parametrize("h", ["[/x]", "esc\x1b[31mred", "[bold red]x[/]"], ids=repr)
@pytest.mark.parametrize("name", list(TOP))
def test_top_level_errors_are_one_line_text(name: str, h: str) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "lpmsim.cli", *TOP[name](h)], capture_output=True, text=True, check=False
    )
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert "\x1b" not in res.stderr and "Traceback" not in res.stderr

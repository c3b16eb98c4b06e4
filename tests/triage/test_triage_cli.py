"""`lpmsim triage` on the command line: JSON schema, table, calibration, stdin, exit codes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpmsim.cli.main import app
from lpmsim.triage.events import EVENT_TYPES, JSON_EVENT_KEYS

DATA = Path(__file__).resolve().parents[1] / "data" / "triage"
runner = CliRunner()


def test_json_schema() -> None:
    res = runner.invoke(app, ["triage", "--json", str(DATA / "030.log")])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert set(obj) == {"events", "phases"}
    assert [tuple(e) for e in obj["events"]] == [JSON_EVENT_KEYS, JSON_EVENT_KEYS]
    hl, panic = obj["events"]
    assert hl == {
        "type": "hardlockup",
        "line": 721,
        "time_s": None,
        "cpus": [0],
        "duration_s": 15.999,
        "task": None,
        "phase": None,
        "verdict": "unknown",
        "reason": hl["reason"],
    }
    assert panic["type"] == "panic" and panic["line"] == 723
    assert obj["phases"] == []
    assert all(e["type"] in EVENT_TYPES for e in obj["events"])


def test_json_phases_have_times(tmp_path: Path) -> None:
    log = tmp_path / "m.log"
    log.write_text(
        "[ 1.000000] mobility: calling ibm,suspend-me on CPU 0\n"
        "[ 2.000000] mobility: CPU 0 waking all threads\n"
        "[ 9.000000] mobility: memory transfer completed.\n"
    )
    obj = json.loads(runner.invoke(app, ["triage", "--json", str(log)]).stdout)
    assert [(p["name"], p["start_s"], p["end_s"]) for p in obj["phases"]] == [
        ("before_suspend", 1.0, 1.0),
        ("suspend", 1.0, 2.0),
        ("transfer", 2.0, 9.0),
        ("after_transfer", 9.0, 9.0),
    ]
    assert {"name", "migration", "start_s", "end_s", "start_line", "end_line"} == set(obj["phases"][0])


def test_table_output() -> None:
    res = runner.invoke(app, ["triage", str(DATA / "extra" / "101.log")])
    assert res.exit_code == 0, res.output
    assert "hardlockup" in res.stdout and "Crash path" in res.stdout


def test_calibrate() -> None:
    res = runner.invoke(app, ["triage", "--calibrate", str(DATA / "048.log")])
    assert res.exit_code == 0
    assert "lower bounds" in res.stdout
    obj = json.loads(runner.invoke(app, ["triage", "--json", "--calibrate", str(DATA / "048.log")]).stdout)
    assert {b["type"] for b in obj["calibration"]} >= {"softlockup", "rcu_stall", "hung_task"}


def test_several_files_and_stdin(tmp_path: Path) -> None:
    gz = tmp_path / "x.gz"
    gz.write_bytes(gzip.compress((DATA / "037.log").read_bytes()))
    res = runner.invoke(
        app, ["triage", "--json", str(DATA / "030.log"), "-", str(gz)], input=(DATA / "042.log").read_text()
    )
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert [(e["file"], e["line"]) for e in obj["events"]] == [
        (str(DATA / "030.log"), 721),
        (str(DATA / "030.log"), 723),
        ("-", 51),
        ("-", 105),
        (str(gz), 194),
    ]


def test_since_until_filter() -> None:
    res = runner.invoke(app, ["triage", "--json", "--since", "100", "--until", "150", str(DATA / "048.log")])
    assert [e["line"] for e in json.loads(res.stdout)["events"]] == [1500, 1532, 1560]


def test_errors_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["triage", str(tmp_path / "missing.log")])
    assert res.exit_code == 2
    assert "no such file" in res.output
    assert runner.invoke(app, ["triage", str(tmp_path)]).exit_code == 2
    assert (
        runner.invoke(app, ["triage", "--since", "5", "--until", "1", str(DATA / "030.log")]).exit_code == 2
    )
    assert runner.invoke(app, ["triage"]).exit_code == 2


def test_console_script_subprocess() -> None:
    exe = Path(sys.executable).parent / "lpmsim"
    proc = subprocess.run(
        [str(exe), "triage", "--json", "-"],
        input=(DATA / "023.log").read_bytes(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert [e["line"] for e in json.loads(proc.stdout)["events"]] == [245, 260]
    proc = subprocess.run(
        [str(exe), "triage", "/nonexistent.log"], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert b"Traceback" not in proc.stderr and b"no such file" in proc.stderr


# -- issue 15: finite --since/--until, rich escaping, progress bar ---------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_since_until_must_be_finite(tmp_path: Path, value: str) -> None:
    log = tmp_path / "a.log"
    log.write_text("x\n")
    for opt in ("--since", "--until"):
        r = CliRunner().invoke(app, ["triage", opt, value, str(log)])
        assert r.exit_code == 2
        assert "must be a finite number" in r.output and "Traceback" not in r.output


def test_markup_in_log_text_and_paths_is_printed_verbatim(tmp_path: Path) -> None:
    log = tmp_path / "[red]x[bold].log"
    log.write_text(
        "[ 1.0] watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [[/x]:12]\n"
        "[ 2.0] INFO: task [bold]y[/]:5 blocked for more than 120 seconds.\n"
    )
    r = CliRunner().invoke(app, ["triage", str(log)])
    assert r.exit_code == 0, r.output
    assert (
        "[/x]:12" in r.output
        and "[bold]y[/]:5" in r.output
        and "[red]x[bold].log" in r.output.replace("\n", "")
    )
    r = CliRunner().invoke(app, ["triage", str(tmp_path / "[/x]missing.log")])
    assert r.exit_code == 2 and "[/x]missing.log: no such file" in r.output


def test_progress_bar_on_a_terminal() -> None:
    import io

    from rich.console import Console

    from lpmsim.cli.triage_cmd import ProgressBar

    buf = io.StringIO()
    bar = ProgressBar(Console(file=buf, force_terminal=True, width=100), "[/x].log", delay=0.0)
    bar(512, 1024, 3)
    bar(1024, 1024, 7)
    bar.close()
    assert "7 events" in buf.getvalue() and "[/x].log" in buf.getvalue()
    quiet = io.StringIO()
    bar = ProgressBar(Console(file=quiet, force_terminal=False), "a", delay=0.0)
    bar(1, 2, 3)
    bar.close()
    assert quiet.getvalue() == ""

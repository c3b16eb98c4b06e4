"""Journal atomicity and crash safety under kill -9 at every durable step (fault injection)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from guard_fakeroot import FakeRoot, make_root

from lpmsim.guard.journal import Store
from lpmsim.guard.paths import Paths

CONFIG = 'policy = "inhibit-all"\nwindow_max_s = 2\n[completion]\nmode = "hold"\nhold_s = 1\nmax_s = 2\n'


def run_sub(fr: FakeRoot, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LPMSIM_GUARD_")} | env
    return subprocess.run(
        [sys.executable, "-m", "lpmsim.guard.hook", *args, "--root", str(fr.root)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def trace_points(tmp: Path, gen: str, phase: str) -> list[str]:
    fr = make_root(tmp / "trace", gen, CONFIG)
    fr.guard("run-phase", "check")
    if phase == "post":
        fr.guard("run-phase", "pre")
    trace = tmp / "trace.txt"
    proc = run_sub(fr, "run-phase", phase, env={"LPMSIM_GUARD_TRACE": str(trace)})
    assert proc.returncode == 0, proc.stderr
    return trace.read_text().splitlines()


@pytest.mark.parametrize(("gen", "phase"), [("v6.0+", "pre"), ("pre-v6.0", "pre"), ("v6.0+", "post")])
def test_kill_9_at_every_write(tmp_path: Path, gen: str, phase: str) -> None:
    points = trace_points(tmp_path, gen, phase)
    names = [p.split(" ", 1)[1] for p in points]
    assert any(n.startswith("journal-") for n in names) and any(
        n.startswith("setting-written") for n in names
    )
    for n in range(1, len(points) + 1):
        fr = make_root(tmp_path / f"kill{n}", gen, CONFIG)
        before = fr.values()
        assert fr.guard("run-phase", "check")[0] == 0
        if phase == "post":
            assert fr.guard("run-phase", "pre")[0] == 0
        proc = run_sub(fr, "run-phase", phase, env={"LPMSIM_GUARD_KILL_AT": str(n)})
        assert proc.returncode == -signal.SIGKILL, (n, points[n - 1], proc.stderr)
        # both journal copies on disk are whole: the old one or the new one, never torn
        loaded = Store.of(Paths(fr.root)).load()
        assert loaded.problems == (), loaded.problems
        j = loaded.journal
        if j is not None:
            assert all(e.original == before[e.name] for e in j.entries), points[n - 1]
        # the next invocation in the same boot puts every original value back
        rc, _, err = fr.guard("restore")
        assert rc == 0, err
        assert fr.values() == before, f"not restored after kill at {points[n - 1]}"
        assert fr.journal_data() is None


def dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


def test_torn_temporary_file_is_ignored_and_only_a_writer_removes_it(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", CONFIG)
    fr.guard("run-phase", "check")
    good = fr.journal.read_text()
    dead = fr.journal.parent / f"journal.json.tmp.{dead_pid()}"
    live = fr.journal.parent / f"journal.json.tmp.{os.getppid()}"  # a running process: maybe a writer
    for tmp in (dead, live):
        tmp.write_text(good[: len(good) // 2])
    assert Store.of(Paths(fr.root)).load().journal is not None
    assert fr.guard("status")[0] == 0
    assert dead.exists() and live.exists()  # readers never delete
    assert fr.guard("run-phase", "check")[0] == 0  # a writer, under the lock
    assert not dead.exists() and live.exists()


def test_corrupt_journal_is_set_aside(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", CONFIG)
    fr.journal.parent.mkdir(parents=True)
    fr.journal.write_text("{not json")
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 1  # vetoed once: the lost journal may have held the originals of an open window
    assert "unreadable journal" in err
    assert (fr.journal.parent / "journal.json.corrupt").exists()
    assert "moved to journal.json.corrupt" in "\n".join(fr.kmsg())
    assert fr.guard("run-phase", "check")[0] == 0

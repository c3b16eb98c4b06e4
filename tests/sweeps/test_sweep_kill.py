"""``kill -9`` of ``lpmsim sweep`` at random moments, again and again: every resume goes on from the
store, which ends with exactly one row per key, each equal to the row of an uninterrupted sweep,
and no worker process outlives its killed parent by more than a few seconds."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from lpmsim.sweeps.sweepfile import load_sweep

from .sweep_helpers import alive, children_of, lpmsim_cmd, rows, run_cli, store_keys, tiny_sweep

KILLS = 20


def stored_count(out: Path) -> int:
    """Rows in the store now (-1 before it has its tables), read beside the running sweep."""
    path = out / "sweep.sqlite"
    if not path.exists():
        return -1
    try:
        with closing(sqlite3.connect(path, timeout=5)) as db:
            return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])
    except sqlite3.Error:
        return -1


ORPHAN_GRACE_S = 5.0


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume(tmp_path: Path) -> None:
    # 2 points x 2 variants x 30 seeds, 0.1-0.2 s a run: more than the 20 sessions can finish (with
    # 10 seeds, once runs got faster, the later sessions found the plan done before any kill)
    f = tiny_sweep(tmp_path, seeds=30, max_time_s=10)
    plan = load_sweep(f).plan()
    ref = tmp_path / "ref"
    r = run_cli("sweep", str(f), "--out", str(ref), "-j", "1", "-q")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "killed"
    rng = random.Random(20261206)
    killed_mid_run = 0
    stored: list[int] = []
    for i in range(KILLS):
        proc = subprocess.Popen(
            lpmsim_cmd("sweep", str(f), "--out", str(out), "-j", "2", "-q"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        family: set[int] = set()
        if i % 2:
            # at any moment from the start: start-up, creating the store, spawning workers, running
            deadline = time.monotonic() + rng.uniform(0.2, 3.0)
        else:
            # while runs are being stored, whatever the machine's load: once a new row is in
            before = stored_count(out)
            t0 = time.monotonic()
            while stored_count(out) <= before and proc.poll() is None and time.monotonic() - t0 < 120:
                family |= children_of(proc.pid)
                time.sleep(0.05)
            deadline = time.monotonic() + rng.uniform(0.0, 0.6)
        while time.monotonic() < deadline and proc.poll() is None:
            family |= children_of(proc.pid)
            time.sleep(0.05)
        if proc.poll() is None:
            family |= children_of(proc.pid)
            proc.send_signal(signal.SIGKILL)
            killed_mid_run += 1
        proc.wait()
        t0 = time.monotonic()
        while alive(family) and time.monotonic() - t0 < ORPHAN_GRACE_S:
            time.sleep(0.1)
        assert not alive(family), f"kill {i}: processes {sorted(alive(family))} outlived the sweep"
        if (out / "sweep.sqlite").exists():
            keys = store_keys(out)  # opens, passes the integrity check
            assert len(keys) == len(set(keys)) and set(keys) <= set(plan.keys)
            stored.append(len(keys))
    assert killed_mid_run >= KILLS // 2
    # some kills landed while runs were being stored, not only before the first or after the last
    assert any(0 < n < len(plan.specs) for n in stored), stored
    print(f"kills: {killed_mid_run}; rows in the store after each: {stored}")
    r = run_cli("sweep", str(f), "--out", str(out), "-j", "2", "-q")
    assert r.returncode == 0, r.stderr
    assert store_keys(out) == sorted(plan.keys)
    assert rows(out) == rows(ref)
    assert not list(out.glob(".*.tmp"))

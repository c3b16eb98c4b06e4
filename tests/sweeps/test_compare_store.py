"""``lpmsim compare`` through the result store: resume, another plan refused (or ``--fresh``), kill -9
mid-run then resume, and ``--executor dask --workers 2`` giving the rows of a local run."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lpmsim import runner as lpm_runner
from lpmsim.cli.main import app
from lpmsim.config.loader import resolve_scenario
from lpmsim.config.scenario import Scenario
from lpmsim.sweeps.compare import compare
from lpmsim.sweeps.store import StoreError

from .sweep_helpers import alive, children_of, lpmsim_cmd, rows, run_cli, store_keys

cli = CliRunner()

# The small preset, 256 MiB, 5 simulated seconds: well under a second a run.
TINY = ("--preset", "small", "--set", "partition.memory_gib=0.25", "--set", "sim.max_time_s=5")
VARIANTS = ("-V", "a=none", "-V", "f=nmi-factor:300,platform.discipline=demand-first")


def _cli(*args: str) -> tuple[int, str, str]:
    res = cli.invoke(app, ["compare", *args])
    return res.exit_code, res.stdout, res.stderr


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the runs of this process (``-j 1`` runs in it)."""
    real = lpm_runner.run_scenario
    seeds: list[int] = []

    def counting(sc: Scenario, *a: Any, **k: Any) -> dict[str, Any]:
        seeds.append(sc.sim.seed)
        return real(sc, *a, **k)

    monkeypatch.setattr(lpm_runner, "run_scenario", counting)
    return seeds


def _stored(out: Path) -> int:
    """Runs in the store (0 while it is being created)."""
    with closing(sqlite3.connect(out / "sweep.sqlite")) as db:
        try:
            return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])
        except sqlite3.OperationalError:  # no table yet: the plan is not committed
            return 0


def test_resumes_running_only_the_missing_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "o"
    args = (*TINY, *VARIANTS, "-n", "3", "-j", "1", "-q", "-o", str(out))
    ran = _count_runs(monkeypatch)
    code, _, err = _cli(*args)
    assert code == 0, err
    assert len(ran) == 6 and len(store_keys(out)) == 6
    first_rows = rows(out)
    first_doc = json.loads((out / "compare.json").read_text())

    # the same command again: everything is in the store, nothing runs
    ran.clear()
    code, _, err = _cli(*args)
    assert code == 0, err
    assert ran == []

    # lose two rows (as a kill would: runs that were in flight), then resume
    with closing(sqlite3.connect(out / "sweep.sqlite")) as db, db:
        db.execute("DELETE FROM runs WHERE key IN (SELECT key FROM runs ORDER BY key LIMIT 2)")
    (out / "runs.parquet").unlink()
    ran.clear()
    code, _, err = _cli(*args[:-3], "-o", str(out))  # not quiet: the resume is announced
    assert code == 0, err
    assert "resuming: 4 of 6 runs already in" in err
    assert len(ran) == 2
    assert len(store_keys(out)) == 6
    assert rows(out) == first_rows
    doc = json.loads((out / "compare.json").read_text())
    assert set(doc) == set(first_doc) and doc["complete"] is True
    for v, w in zip(doc["variants"], first_doc["variants"], strict=True):
        assert {**v["results"], "wall_s_mean": 0} == {**w["results"], "wall_s_mean": 0}


def test_another_plan_in_the_same_out_is_refused_unless_fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "o"
    code, _, err = _cli(*TINY, "-V", "a=none", "-n", "1", "-j", "1", "-q", "-o", str(out))
    assert code == 0, err
    before = (out / "runs.parquet").read_bytes(), (out / "compare.json").read_text()

    ran = _count_runs(monkeypatch)
    code, stdout, err = _cli(*TINY, "-V", "a=none", "-n", "2", "-j", "1", "-q", "-o", str(out))
    assert code == 2 and stdout == ""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "holds another plan" in lines[0] and "--fresh" in lines[0]
    assert ran == []
    assert ((out / "runs.parquet").read_bytes(), (out / "compare.json").read_text()) == before

    code, _, err = _cli(*TINY, "-V", "a=none", "-n", "2", "-j", "1", "-q", "--fresh", "-o", str(out))
    assert code == 0, err
    assert sorted(ran) == [1, 2]
    assert [(r["variant"], r["seed"]) for r in rows(out)] == [("a", 1), ("a", 2)]


def test_python_api_with_a_store_resumes_and_refuses_another_plan(tmp_path: Path) -> None:
    base = resolve_scenario(preset="small", overrides=["partition.memory_gib=0.25", "sim.max_time_s=5"])
    mem = compare(base, ["a=none"], runs=2, jobs=1)
    stored = compare(base, ["a=none"], runs=2, jobs=1, out_dir=tmp_path)
    again = compare(base, ["a=none"], runs=2, jobs=1, out_dir=tmp_path)
    strip = [
        [{k: v for k, v in r.items() if k != "wall_s"} for r in res.rows] for res in (mem, stored, again)
    ]
    assert strip[0] == strip[1] == strip[2]
    assert [r.row["wall_s"] for r in again.results] == [r.row["wall_s"] for r in stored.results]
    with pytest.raises(StoreError, match="holds another plan"):
        compare(base, ["a=none"], runs=3, jobs=1, out_dir=tmp_path)


def test_kill_9_mid_run_then_resume(tmp_path: Path) -> None:
    # 2 variants x 15 seeds of 5 simulated seconds: enough runs to kill the comparison among them
    ref, out = tmp_path / "ref", tmp_path / "o"
    args = (*TINY, *VARIANTS, "-n", "15", "-q")
    r = run_cli("compare", *args, "-j", "1", "-o", str(ref))
    assert r.returncode == 0, r.stderr

    proc = subprocess.Popen(
        lpmsim_cmd("compare", *args, "-j", "2", "-o", str(out)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    family: set[int] = set()
    try:
        t0 = time.monotonic()
        while not ((out / "sweep.sqlite").exists() and _stored(out) >= 2):
            family |= children_of(proc.pid)
            if proc.poll() is not None:
                raise AssertionError(f"the comparison ended before it could be killed: {proc.stderr}")
            assert time.monotonic() - t0 < 240, "no run was stored in time"
            time.sleep(0.05)
        family |= children_of(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    t0 = time.monotonic()
    while alive(family) and time.monotonic() - t0 < 30:
        time.sleep(0.1)
    assert not alive(family), f"processes {sorted(alive(family))} outlived the killed comparison"
    killed_at = _stored(out)
    assert 2 <= killed_at < 30, killed_at  # killed mid-run: no exports yet
    assert not (out / "runs.parquet").exists()

    r = run_cli("compare", *args[:-1], "-j", "2", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert f"resuming: {killed_at} of 30 runs" in r.stderr
    assert store_keys(out) == store_keys(ref)
    assert rows(out) == rows(ref)
    assert not list(out.glob(".*.tmp"))


def test_dask_local_cluster_gives_the_rows_of_a_local_run(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    local, dask = tmp_path / "local", tmp_path / "dask"
    args = (*TINY, *VARIANTS, "-n", "2", "-q")
    r = run_cli("compare", *args, "-j", "1", "-o", str(local))
    assert r.returncode == 0, r.stderr
    r = run_cli("compare", *args, "--executor", "dask", "--workers", "2", "-o", str(dask))
    assert r.returncode == 0, r.stderr
    assert rows(local) == rows(dask)
    assert len(rows(local)) == 4
    doc = json.loads((dask / "compare.json").read_text())
    assert doc["command"][-4:] == ["--executor", "dask", "--workers", "2"]
    assert doc["execution"]["jobs"] == 2 and doc["complete"] is True


def test_scheduler_needs_the_dask_executor(tmp_path: Path) -> None:
    out = tmp_path / "o"
    code, stdout, err = _cli(*TINY, "-V", "a=none", "--scheduler", "tcp://127.0.0.1:1", "-o", str(out))
    assert code == 2 and stdout == ""
    assert err.strip() and "--scheduler needs --executor dask" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()

"""``lpmsim sweep --executor dask``: a real scheduler and two workers on 127.0.0.1, started here.

The same sweep gives the same Parquet rows locally, on the cluster and on a LocalCluster; a worker
killed under a run: the run goes to another worker and is recorded once; a run that kills every
worker it lands on is recorded as failed after two retries and the sweep goes on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from lpmsim.sweeps.dask_executor import DaskExecutor
from lpmsim.sweeps.sweep import run_sweep
from lpmsim.sweeps.sweepfile import load_sweep

from .helpers import DEADLY_SEED, MARK_DIR_ENV, SLOW_SEED, die_on_seed_3, slow_on_seed_2
from .sweep_helpers import rows, run_cli, store_keys, tiny_sweep

TESTS = Path(__file__).resolve().parents[1]


def _wait_for(pred: object, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A scheduler and two single-threaded workers (with nannies) on 127.0.0.1; yields (address,
    the directory the workers' test hooks mark)."""
    d = tmp_path_factory.mktemp("cluster")
    marks = d / "marks"
    marks.mkdir()
    sched_file = d / "scheduler.json"
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2",
        # a worker holds only the run it runs: no healthy run queued on a worker the deadly run kills
        # (with the default 1.1 a single-threaded worker holds two, and a healthy one queued beside
        # the deadly run failed with it once in a loaded CI run)
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        MARK_DIR_ENV: str(marks),
    }
    common = ["--no-dashboard", "--scheduler-file", str(sched_file)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                *common,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    try:
        _wait_for(sched_file.exists, 60, "the scheduler")
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        *common,
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        import distributed

        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, marks
    finally:
        # the nannies and their workers are in each process's own session: end them all at once
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            p.wait()


def test_same_rows_locally_on_a_cluster_and_on_a_local_cluster(
    tmp_path: Path, cluster: tuple[str, Path]
) -> None:
    address, _ = cluster
    f = tiny_sweep(tmp_path, seeds=2)
    local, remote, lc = tmp_path / "local", tmp_path / "remote", tmp_path / "lc"
    r = run_cli("sweep", str(f), "--out", str(local), "-j", "1", "-q")
    assert r.returncode == 0, r.stderr
    r = run_cli("sweep", str(f), "--out", str(remote), "--executor", "dask", "--scheduler", address, "-q")
    assert r.returncode == 0, r.stderr
    # a LocalCluster started by lpmsim: every address on the loopback
    ex = DaskExecutor(workers=2)
    try:
        addresses = [ex.address, *ex._client.scheduler_info()["workers"]]
        assert len(addresses) == 3
        assert all(a.startswith("tcp://127.0.0.1:") for a in addresses), addresses
        run_sweep(load_sweep(f).plan(), lc, ex).write(lc)
    finally:
        ex.close()
    assert rows(local) == rows(remote) == rows(lc)
    assert len(rows(local)) == 8
    doc = json.loads((remote / "compare.json").read_text())
    assert doc["execution"]["executor"].startswith("dask, scheduler at tcp://127.0.0.1:")


def test_a_killed_worker_s_run_is_retried_and_recorded_once(
    tmp_path: Path, cluster: tuple[str, Path]
) -> None:
    address, marks = cluster
    for m in marks.iterdir():
        m.unlink()
    plan = load_sweep(tiny_sweep(tmp_path, seeds=2, variants='["a=none"]', vcpus="[4]")).plan()
    target = next(s for s in plan.specs if s.seed == SLOW_SEED)
    out = tmp_path / "o"
    ex = DaskExecutor(address, simulate=slow_on_seed_2)
    killed: list[int] = []

    def progress(res: object, done: int, total: int) -> None:
        # the fast run is in: the slow one is sleeping on its worker; kill that worker once
        if not killed:
            _wait_for(lambda: any(marks.iterdir()), 30, "the slow run to start")
            pid = int(sorted(marks.iterdir())[0].read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    try:
        res = run_sweep(plan, out, ex, progress)
    finally:
        ex.close()
    assert killed
    started = sorted(marks.iterdir())
    assert len(started) == 2  # the run started on the killed worker, then again elsewhere
    assert store_keys(out) == sorted(plan.keys)
    got = next(r for r in res.results if r.key == target.key)
    assert got.ok, got.error
    assert [r.key for r in res.results].count(target.key) == 1


@pytest.mark.slow
def test_a_run_that_kills_every_worker_is_recorded_failed(tmp_path: Path, cluster: tuple[str, Path]) -> None:
    address, _ = cluster
    plan = load_sweep(tiny_sweep(tmp_path, seeds=3, variants='["a=none"]', vcpus="[4]")).plan()
    out = tmp_path / "o"
    ex = DaskExecutor(address, simulate=die_on_seed_3)
    try:
        res = run_sweep(plan, out, ex)
    finally:
        ex.close()
    assert res.complete and store_keys(out) == sorted(plan.keys)
    [bad] = res.failures
    assert bad.seed == DEADLY_SEED and bad.error is not None and "KilledWorker" in bad.error
    assert all(r.ok for r in res.results if r.seed != DEADLY_SEED)

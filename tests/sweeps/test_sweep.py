"""``lpmsim sweep``: the sweep file, refusals, the store, resume, exports, tables, local workers that die."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpmsim.cli.main import app
from lpmsim.outputs.files import current_umask
from lpmsim.sweeps.executors import LocalExecutor
from lpmsim.sweeps.plan import scenario_hash
from lpmsim.sweeps.rows import RunResult, empty_row, run_one
from lpmsim.sweeps.store import ResultStore, StoreError, store_path
from lpmsim.sweeps.sweep import describe, load_result, run_sweep, session_lock
from lpmsim.sweeps.sweep_report import METRICS
from lpmsim.sweeps.sweepfile import SweepFileError, load_sweep

from .helpers import DEADLY_SEED, die_on_seed_3
from .sweep_helpers import rows, run_cli, store_keys, tiny_sweep, tiny_text


def cli(*args: str) -> tuple[int, str, str]:
    """The CLI in this process (for refusals: nothing runs)."""
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


# -- the sweep file and its plan -----------------------------------------------------------------------


def test_plan_expands_axes_variants_and_seeds_with_stable_keys(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(tiny_text(seeds=2) + '"platform.link_gbps" = { from = 1, to = 2.5, step = 0.5 }\n')
    sf = load_sweep(f)
    assert [(a.field, a.values) for a in sf.axes] == [
        ("partition.vcpus", (4, 8)),
        ("platform.link_gbps", (1.0, 1.5, 2.0, 2.5)),
    ]
    plan = sf.plan()
    assert len(plan.specs) == 2 * 4 * 2 * 2
    first = plan.specs[0]
    assert first.point == (("partition.vcpus", 4), ("platform.link_gbps", 1.0))
    assert (first.variant, first.seed, first.scenario.partition.vcpus, first.scenario.sim.seed) == (
        "a",
        1,
        4,
        1,
    )
    f_spec = next(s for s in plan.specs if s.variant == "f")
    assert f_spec.scenario.platform.discipline == "demand-first"
    assert f_spec.key == f"{scenario_hash(f_spec.scenario)}/f/{f_spec.seed}"
    assert len(set(plan.keys)) == len(plan.specs)
    # the same file gives the same keys and digest; another seed count another digest
    assert load_sweep(f).plan().keys == plan.keys
    f.write_text(f.read_text().replace("count = 2", "count = 3"))
    again = load_sweep(f).plan()
    assert again.digest != plan.digest and set(plan.keys) < set(again.keys)


def test_a_sweep_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    f = tmp_path / "bom.toml"
    f.write_bytes(b"\xef\xbb\xbf" + tiny_text(seeds=2).encode())
    assert len(load_sweep(f).plan().keys) == 8


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("preset = [", "not valid TOML"),
        ("oops = 1\n" + tiny_text(seeds=2), "oops: unknown key"),
        (tiny_text(seeds=2).replace("partition.vcpus", "partition.vcpuz"), "partition.vcpuz"),
        (tiny_text(seeds=2).replace("[4, 8]", "[]"), "empty axis"),
        (tiny_text(seeds=2).replace("[4, 8]", "[4, -8]"), "partition.vcpus"),
        (tiny_text(seeds=2).replace("[4, 8]", "{ from = 8, to = 4 }"), "empty range"),
        (tiny_text(seeds=2).replace("[4, 8]", "[4, 4]"), "given twice"),
        (tiny_text(seeds=2).replace('"partition.vcpus"', '"mitigation.policy"'), "variants"),
        (tiny_text(seeds=2).replace("a=none", "a=bogus"), "unknown policy"),
        (tiny_text(seeds=0), "at least one seed"),
        (tiny_text(seeds=2).replace('preset = "small"', 'preset = "nope"'), "unknown preset"),
        ("x = " + "[" * 5000 + "]" * 5000 + "\n" + tiny_text(seeds=2), "nested too deeply"),
    ],
)
def test_bad_sweep_files_are_refused_in_one_line_and_nothing_is_written(
    tmp_path: Path, text: str, needle: str
) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    out = tmp_path / "out"
    code, stdout, stderr = cli("sweep", str(f), "--out", str(out), "-j", "1")
    assert code == 2, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], stderr
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists()
    with pytest.raises(SweepFileError):
        load_sweep(f).plan()


# -- end to end, resume, exports ----------------------------------------------------------------------


def test_sweep_resume_report_only_and_independent_of_workers(tmp_path: Path) -> None:
    f = tiny_sweep(tmp_path, seeds=2)
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = run_cli("sweep", str(f), "--out", str(one), "-j", "1")
    assert r1.returncode == 0, r1.stderr
    assert "Outcomes" in r1.stdout and "P(crash)" in r1.stdout and "vcpus" in r1.stdout
    # not a terminal: a progress line per 10 % of the runs at most, the last at 8/8
    progress = [ln for ln in r1.stderr.splitlines() if ln.startswith("sweep: ")]
    assert 1 <= len(progress) <= 10 and progress[-1].startswith("sweep: 8/8 runs done, 0 failed")
    assert "runs/min, ETA" in progress[-1]
    r2 = run_cli("sweep", str(f), "--out", str(two), "-j", "2", "--by", "partition.vcpus", "-q")
    assert r2.returncode == 0, r2.stderr
    assert rows(one) == rows(two)
    got = rows(one)
    assert len(got) == 8 and len({r["key"] for r in got}) == 8
    assert [(r["partition.vcpus"], r["variant"], r["seed"]) for r in got][:3] == [
        (4, "a", 1),
        (4, "a", 2),
        (4, "f", 1),
    ]
    assert all(r["ok"] for r in got)
    umask = current_umask()
    for name in ("compare.json", "runs.parquet"):  # an ordinary file's mode (issue 11), not mkstemp's 0600
        assert stat.S_IMODE((one / name).stat().st_mode) == 0o666 & ~umask, name
    doc = json.loads((one / "compare.json").read_text())
    assert doc["kind"] == "sweep" and doc["complete"] is True and doc["seeds"] == [1, 2]
    assert [p["point"] for p in doc["points"]] == [{"partition.vcpus": 4}, {"partition.vcpus": 8}]
    res = doc["points"][1]["variants"][1]["results"]
    assert res["runs"] == 2 and set(res["p_crash"]) == {"k", "n", "p", "ci95_low", "ci95_high"}
    assert doc["points"][1]["variants"][1]["scenario"]["partition"]["vcpus"] == 8

    # resume: every key has its row, nothing runs again, the same outputs
    before = hashlib.sha256((one / "runs.parquet").read_bytes()).hexdigest()
    r3 = run_cli("sweep", str(f), "--out", str(one), "-j", "1")
    assert r3.returncode == 0 and "resuming: 8 of 8 runs" in r3.stderr
    assert hashlib.sha256((one / "runs.parquet").read_bytes()).hexdigest() == before

    # --report-only rebuilds the exports from the store alone, with the pivot
    (one / "runs.parquet").unlink()
    (one / "compare.json").unlink()
    shutil.move(f, tmp_path / "gone.toml")
    r4 = run_cli("sweep", "--report-only", str(one), "--by", "partition.vcpus")
    assert r4.returncode == 0, r4.stderr
    assert "p_crash by partition.vcpus" in r4.stdout and "vcpus=8" in r4.stdout
    assert hashlib.sha256((one / "runs.parquet").read_bytes()).hexdigest() == before


def test_resume_runs_only_missing_keys(tmp_path: Path) -> None:
    plan = load_sweep(tiny_sweep(tmp_path, seeds=2)).plan()
    out = tmp_path / "o"
    out.mkdir()
    half = plan.specs[: len(plan.specs) // 2]
    # a first session that stored only half the keys (as if killed)
    with ResultStore(store_path(out)) as store:
        store.create_plan(plan.digest, plan.specs, describe(plan, None), "test")
        for s in half:
            store.record(run_one(s))
    seen: list[str] = []
    res = run_sweep(plan, out, LocalExecutor(1), lambda r, done, total: seen.append(r.key))
    assert sorted(seen) == sorted(s.key for s in plan.specs[len(half) :])
    assert res.complete and res.session is not None and res.session.runs_resumed == len(half)
    assert store_keys(out) == sorted(plan.keys)


def test_store_keeps_one_row_per_key(tmp_path: Path) -> None:
    plan = load_sweep(tiny_sweep(tmp_path, seeds=1)).plan()
    spec = plan.specs[0]
    with ResultStore(tmp_path / "s.sqlite") as store:
        assert store.info() is None
        store.create_plan(plan.digest, plan.specs, {"name": "x"}, "test")
        row = empty_row(spec)
        row["error"] = "first"
        assert store.record(RunResult(spec.key, row))
        assert not store.record(RunResult(spec.key, {**row, "error": "second"}))
        assert [r.error for r in store.results()] == ["first"]
        info = store.info()
        assert info is not None and info.digest == plan.digest and info.runs == len(plan.specs)


def test_a_different_plan_in_the_same_dir_is_refused_unless_fresh(tmp_path: Path) -> None:
    f = tiny_sweep(tmp_path, seeds=1)
    out = tmp_path / "o"
    assert run_cli("sweep", str(f), "--out", str(out), "-j", "1", "-q").returncode == 0
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    g = tiny_sweep(tmp_path, seeds=2, name="other.toml")
    res = run_cli("sweep", str(g), "--out", str(out), "-j", "1")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "holds another plan" in lines[0] and "--fresh" in lines[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot
    res = run_cli("sweep", str(g), "--out", str(out), "-j", "1", "--fresh", "-q")
    assert res.returncode == 0, res.stderr
    assert len(store_keys(out)) == 8


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    f = tiny_sweep(tmp_path, seeds=1)
    out = tmp_path / "o"
    out.mkdir()
    (out / "sweep.sqlite").write_text("not a database, but someone's notes\n" * 100)
    res = run_cli("sweep", str(f), "--out", str(out), "-j", "1")
    assert res.returncode == 2 and "not an lpmsim result store" in res.stderr
    assert sorted(p.name for p in out.iterdir()) == ["sweep.sqlite"]
    res = run_cli("sweep", "--report-only", str(tmp_path))
    assert res.returncode == 2 and "no result store" in res.stderr


def test_read_only_output_dir_is_refused(tmp_path: Path) -> None:
    f = tiny_sweep(tmp_path, seeds=1)
    if os.geteuid() == 0:
        # root writes in any directory whatever its mode: use one no process can create files in
        parent = Path("/sys")
        out = parent / "lpmsim-sweep-test" / "out"
    else:
        parent = tmp_path / "ro"
        parent.mkdir()
        parent.chmod(0o555)
        out = parent / "out"
    before = sorted(p.name for p in parent.iterdir())
    code, stdout, stderr = cli("sweep", str(f), "--out", str(out), "-j", "1")
    assert code == 2, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cannot write" in lines[0], stderr
    assert stdout == "" and sorted(p.name for p in parent.iterdir()) == before


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--by", "partition.memory_gib"), "not an axis"),
        (("--metric", "nonsense"), "--metric nonsense"),
        (("--scheduler", "tcp://127.0.0.1:1"), "needs --executor dask"),
        (("--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"), "not both"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    out = tmp_path / "o"
    code, _, stderr = cli("sweep", str(tiny_sweep(tmp_path)), "--out", str(out), *args)
    assert code == 2 and needle in stderr, stderr
    assert not out.exists()


# -- local workers that die -----------------------------------------------------------------------------


def test_a_run_that_kills_its_local_worker_is_retried_twice_then_failed(tmp_path: Path) -> None:
    plan = load_sweep(tiny_sweep(tmp_path, seeds=4)).plan()
    out = tmp_path / "o"
    res = run_sweep(plan, out, LocalExecutor(2, simulate=die_on_seed_3))
    assert res.complete
    assert store_keys(out) == sorted(plan.keys)
    bad = res.failures
    assert sorted((r.variant, r.seed) for r in bad) == sorted(
        (v, DEADLY_SEED) for v in ("a", "f") for _ in (4, 8)
    )
    assert all(r.attempts == 3 and r.error is not None and r.error.startswith("WorkerDied") for r in bad)
    good = [r for r in res.results if r.ok]
    assert len(good) == len(plan.specs) - 4 and all(r.seed != DEADLY_SEED for r in good)
    assert load_result(out).aggregates == res.aggregates


def test_one_session_at_a_time_per_directory(tmp_path: Path) -> None:
    plan = load_sweep(tiny_sweep(tmp_path, seeds=1)).plan()
    out = tmp_path / "o"
    with session_lock(out), pytest.raises(StoreError, match="another lpmsim sweep or compare is running"):
        run_sweep(plan, out, LocalExecutor(1))
    assert run_sweep(plan, out, LocalExecutor(1)).complete


@pytest.mark.parametrize("metric", METRICS)
def test_every_metric_pivots(tmp_path: Path, metric: str) -> None:
    out = tmp_path / "o"
    assert run_sweep(load_sweep(tiny_sweep(tmp_path, seeds=1)).plan(), out, LocalExecutor(1)).complete
    code, stdout, stderr = cli(
        "sweep", "--report-only", str(out), "--by", "partition.vcpus", "--metric", metric
    )
    assert code == 0, stderr
    assert metric in stdout and "vcpus=4" in stdout and "vcpus=8" in stdout

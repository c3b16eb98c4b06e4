"""Randomised faults: any file of the fake root removed, made unreadable (a directory or a dangling
symlink in its place), emptied, or replaced by garbage or a deeply nested TOML document, at any phase
boundary.  After ``post`` (and the completion restorer, where ``post`` hands over to it) and after
``restore``, every setting equals its original value — except a setting whose own file was the target,
which nobody could restore — and no command raised or printed a traceback."""

from __future__ import annotations

import io
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from guard_fakeroot import FAULT_KINDS, FakeRoot, fault_targets, inject, make_root, proc_stat

from lpmsim.guard.background import run_restorer
from lpmsim.guard.config import ConfigError, GuardConfig, load_config
from lpmsim.guard.paths import Paths
from lpmsim.guard.phases import Guard

TRIALS = int(os.environ.get("LPMSIM_GUARD_FAULT_TRIALS", "200"))  # the default run (seconds)
SLOW_TRIALS = 1000  # further seeds, in the slow suite
SEED = 20261206
BOUNDARIES = ("before-check", "check|pre", "pre|post", "post|restorer", "before-restore")
SCENARIOS = (
    ("v6.0+", 'policy = "inhibit-all"\n'),
    ("pre-v6.0", 'policy = "inhibit-all"\n[completion]\nmode = "hold"\nhold_s = 0\n'),
    (
        "pre-v6.0",
        'policy = "nmi-factor:200"\n[completion]\nmode = "steal"\nsettle_s = 5\nmax_s = 120\npoll_s = 1\n',
    ),
    ("pre-v6.0", 'policy = "disable-nmi"\n[completion]\nmode = "hold"\nhold_s = 30\n'),
    ("v6.0+", 'policy = "nmi-factor:400"\n[overrides]\n"kernel.hung_task_timeout_secs" = 600\n'),
)


@dataclass
class Trial:
    index: int
    fr: FakeRoot
    rng: random.Random
    faults: dict[str, list[tuple[Path, str]]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def boundary(self, name: str) -> None:
        for path, kind in self.faults.get(name, []):
            inject(path, kind, self.rng)

    def guard(self, *args: str) -> int:
        rc, _out, err = self.fr.guard(*args)
        self.log.append(f"{' '.join(args)} -> {rc}: {err.strip()}")
        for line in err.splitlines():
            assert "Traceback" not in line and "unexpected" not in line, self.describe()
            assert line.startswith("lpmsim-guard: "), (line, self.describe())
        return rc

    def describe(self) -> str:
        faults = {b: [(str(p.relative_to(self.fr.root)), k) for p, k in f] for b, f in self.faults.items()}
        return f"trial {self.index}: faults {faults}; " + " | ".join(self.log)


def restorer(trial: Trial) -> None:
    """The detached completion restorer, in-process, with a fake clock; steal settles after 20 s."""
    fr = trial.fr
    if not fr.spawned or fr.spawned[-1][0] != "completion":
        return  # post did not hand over: nothing was started
    paths = Paths(fr.root)
    try:
        cfg = load_config(paths.default_config, required=False)
    except ConfigError:
        cfg = GuardConfig()  # what lpmsim-guard _restorer does with a broken file
    now = [1_000_000.0]
    stat = fr.root / "proc/stat"

    def clock() -> float:
        return now[0]

    def sleep(s: float) -> None:
        now[0] += s
        if stat.is_file() and not stat.is_symlink() and b"cpu " in stat.read_bytes()[:4]:
            steal = int(min(now[0] - 1_000_000.0, 20.0) * 800)  # 50 % steal for 20 s, then none
            stat.write_text(proc_stat(2_000 + steal, 100_000 + int((now[0] - 1_000_000.0) * 1600)))

    out = io.StringIO()
    guard = Guard(paths, cfg, wall=clock, out=out, err=out)
    rc = run_restorer(guard, "completion", fr.spawned[-1][1], clock=clock, sleep=sleep)
    trial.log.append(f"restorer -> {rc}: {out.getvalue().strip()}")
    for line in out.getvalue().splitlines():
        assert line.startswith("lpmsim-guard: ") and "unexpected" not in line, trial.describe()


def assert_originals(trial: Trial, before: dict[str, str], when: str) -> None:
    faulted = {p for f in trial.faults.values() for p, _ in f}
    for name, value in before.items():
        path = trial.fr.path(name)
        if path in faulted:
            continue  # its own file is gone or garbage: nothing can write it back
        now = path.read_text().strip()
        assert now == value, f"{when}: {name} = {now}, original {value}; {trial.describe()}"


def one_trial(base: Path, index: int) -> None:
    rng = random.Random(SEED + index)
    gen, config = SCENARIOS[index % len(SCENARIOS)]
    fr = make_root(base / f"t{index}", gen, config)
    before = fr.values()
    trial = Trial(index, fr, rng)
    # pick the boundaries first, then the targets as they exist at that boundary (the journal files
    # exist from check on): targets are drawn lazily
    plan = [rng.choice(BOUNDARIES) for _ in range(rng.choice((1, 1, 2)))]
    kinds = [rng.choice(FAULT_KINDS) for _ in plan]

    def at(name: str) -> None:
        for b, kind in zip(plan, kinds, strict=True):
            if b == name:
                path = rng.choice(fault_targets(fr.root))
                trial.faults.setdefault(name, []).append((path, kind))
        trial.boundary(name)

    at("before-check")
    trial.guard("run-phase", "check")
    at("check|pre")
    trial.guard("run-phase", "pre")
    at("pre|post")
    trial.guard("status", *(["--json"] if index % 2 else []))  # a reader, at the most delicate moment
    trial.guard("run-phase", "post")
    at("post|restorer")
    restorer(trial)
    assert_originals(trial, before, "after post")
    at("before-restore")
    trial.guard("restore")
    assert_originals(trial, before, "after restore")


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs when there is one (the journal's fsyncs cost nothing there), else tmp_path."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    base = Path(tempfile.mkdtemp(prefix="lpmsim-guard-faults-", dir=shm))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_trials(base: Path, first: int, count: int) -> None:
    start = time.perf_counter()
    for index in range(first, first + count):
        one_trial(base, index)
    print(
        f"{count} trials (seeds {SEED + first}..{SEED + first + count - 1}) in {time.perf_counter() - start:.1f} s"
    )


def test_any_fault_at_any_boundary_leaves_the_originals(fast_tmp: Path) -> None:
    run_trials(fast_tmp, 0, TRIALS)


@pytest.mark.slow
def test_any_fault_at_any_boundary_leaves_the_originals_more_seeds(fast_tmp: Path) -> None:
    run_trials(fast_tmp, TRIALS, SLOW_TRIALS)

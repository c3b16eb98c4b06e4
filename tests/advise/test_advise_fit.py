"""Advice from a log: the pattern triage reads, and the ABC fit recovering known settings from logs
the simulator itself wrote (``lpmsim run --out DIR`` -> DIR/dmesg.log)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lpmsim.advise.fit import (
    LINK,
    MISSING,
    OVERHEAD,
    Prior,
    default_priors,
    fit,
    latin_hypercube,
    parse_prior,
)
from lpmsim.advise.pattern import LogPattern, NoResume, matches, pattern
from lpmsim.cli.main import app
from lpmsim.config.loader import resolve_scenario
from lpmsim.triage.analyze import triage_file, triage_text

BASE = ["--preset", "default"]  # 64 vCPUs, 256 GiB, 1 Gb/s, pre-v6.0


def write_log(tmp_path: Path, link: float, overhead: float, missing: float, seed: int) -> Path:
    out = tmp_path / f"run-{link}-{overhead}-{missing}-{seed}"
    args = [
        "run",
        *BASE,
        "--set",
        f"platform.link_gbps={link}",
        "--set",
        f"platform.fault_overhead_us={overhead}",
        "--set",
        f"migration.resume_missing_fraction={missing}",
        "--seed",
        str(seed),
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return out / "dmesg.log"


def test_pattern_of_a_simulated_log(tmp_path: Path) -> None:
    log = write_log(tmp_path, 1.0, 200.0, 0.5, 5)
    p = pattern(triage_file(str(log)))
    assert p.fired == {"hardlockup", "unrecoverable_system_reset"}
    assert p.cpus["hardlockup"] == 1 and p.bound_s["hardlockup"] >= 15.0
    assert 10.0 < p.first_s["hardlockup"] <= p.window_s
    assert matches(p, p, 0.0)
    later = LogPattern(
        p.window_s, p.cpus, {**p.first_s, "hardlockup": p.first_s["hardlockup"] + 10}, p.bound_s
    )
    assert not matches(later, p, 0.25)
    assert matches(later, p, 1.0)
    assert not matches(LogPattern(p.window_s), p, 1.0)  # nothing fired: another pattern


def test_a_log_without_resume_is_refused() -> None:
    with pytest.raises(NoResume, match="no resume on the destination"):
        pattern(triage_text("[ 1.0] watchdog: CPU 3 self-detected hard LOCKUP @ foo\n"))


def test_latin_hypercube_covers_each_prior_once_per_stratum() -> None:
    pri = default_priors(10.0)
    xs = latin_hypercube(pri, 16, 7)
    assert xs == latin_hypercube(pri, 16, 7)  # deterministic
    frac = sorted((s[MISSING] - 0.01) / 0.99 for s in xs)
    assert all(i / 16 <= f < (i + 1) / 16 for i, f in enumerate(frac))
    assert all(1.0 <= s[LINK] <= 20.0 and 10.0 <= s[OVERHEAD] <= 5000.0 for s in xs)


def test_parse_prior() -> None:
    p = parse_prior("platform.link_gbps=0.5:4", default_priors(1.0))
    assert p == Prior(LINK, 0.5, 4.0, True)
    for bad in ("platform.rtt_us=1:2", "platform.link_gbps=4:0.5", "migration.resume_missing_fraction=0.1:2"):
        with pytest.raises(ValueError, match="--prior"):
            parse_prior(bad, default_priors(1.0))


def _recover(tmp_path: Path, truth: dict[str, float], seed: int, runs: int) -> None:
    log = write_log(tmp_path, truth[LINK], truth[OVERHEAD], truth[MISSING], seed)
    observed = pattern(triage_file(str(log)))
    data = resolve_scenario(preset="default")
    f = fit(data, observed, str(log), default_priors(1.0), runs=runs, tolerance=0.25, seed=11, jobs=1)
    assert f.failed == 0
    assert 0 < f.accepted < f.runs  # the log rejects part of the prior: the test can fail
    for p in f.parameters:
        assert p.low is not None and p.high is not None
        assert p.low <= truth[p.field] <= p.high, (p.field, truth[p.field], p.low, p.high)


def test_fit_recovers_the_settings_of_a_simulated_log(tmp_path: Path) -> None:
    _recover(tmp_path, {LINK: 1.0, OVERHEAD: 200.0, MISSING: 0.5}, seed=5, runs=24)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("truth", "seed"),
    [
        ({LINK: 0.5, OVERHEAD: 50.0, MISSING: 0.8}, 2),
        ({LINK: 1.6, OVERHEAD: 100.0, MISSING: 0.6}, 3),
        ({LINK: 0.7, OVERHEAD: 500.0, MISSING: 0.4}, 6),
    ],
)
def test_fit_recovers_other_settings(tmp_path: Path, truth: dict[str, float], seed: int) -> None:
    _recover(tmp_path, truth, seed=seed, runs=64)

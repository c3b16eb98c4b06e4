"""The ``steal`` completion wait against scripted counters, with a fake clock."""

from __future__ import annotations

import pytest
from guard_fakeroot import make_root, proc_stat

from lpmsim.guard.background import run_restorer
from lpmsim.guard.config import load_config
from lpmsim.guard.paths import Paths
from lpmsim.guard.phases import Guard
from lpmsim.guard.restorer import StealSample, parse_proc_stat, wait_hold, wait_steal


class Script:
    """Counters that advance by a scripted steal fraction per second of fake time."""

    def __init__(self, fractions: list[tuple[float, float]], ticks_per_s: int = 1600) -> None:
        self.fractions = fractions  # (until_t, steal fraction) segments
        self.t = 0.0
        self.steal = 0.0
        self.total = 0.0
        self.rate = ticks_per_s

    def clock(self) -> float:
        return self.t

    def frac(self, t: float) -> float:
        for until, f in self.fractions:
            if t < until:
                return f
        return self.fractions[-1][1]

    def sleep(self, s: float) -> None:
        step = 0.25
        while s > 1e-9:
            d = min(step, s)
            self.steal += self.frac(self.t) * self.rate * d
            self.total += self.rate * d
            self.t += d
            s -= d

    def sample(self) -> StealSample:
        return StealSample(int(self.steal), int(self.total))


def test_settles_after_migration_steal_drops() -> None:
    # 2 % steal before; 40 % while pages are pulled for 100 s; back to 1.5 %
    sc = Script([(100.0, 0.40), (1e9, 0.015)])
    reason = wait_steal(
        0.02, 1.0, settle_s=30, max_s=1800, poll_s=1.0, sample=sc.sample, clock=sc.clock, sleep=sc.sleep
    )
    assert reason == "settled"
    assert 130.0 <= sc.t <= 133.0


def test_a_spike_during_settling_restarts_the_count() -> None:
    sc = Script([(50.0, 0.5), (60.0, 0.01), (62.0, 0.5), (1e9, 0.01)])
    assert wait_steal(0.02, 1.0, 30, 1800, 1.0, sc.sample, sc.clock, sc.sleep) == "settled"
    assert sc.t >= 92.0


def test_hard_maximum_when_steal_never_settles() -> None:
    sc = Script([(1e9, 0.5)])
    assert wait_steal(0.02, 1.0, 30, 600, 1.0, sc.sample, sc.clock, sc.sleep) == "max_s"
    assert sc.t == pytest.approx(600.0, abs=1.0)


def test_cancelled_when_someone_else_restored() -> None:
    sc = Script([(1e9, 0.5)])
    calls = iter([True, True, False])
    assert (
        wait_steal(0.02, 1.0, 30, 600, 1.0, sc.sample, sc.clock, sc.sleep, lambda: next(calls)) == "cancelled"
    )


def test_hold_is_bounded_by_max() -> None:
    sc = Script([(1e9, 0.0)])
    assert wait_hold(300, 1800, sc.clock, sc.sleep) == "hold" and sc.t == pytest.approx(300)


def test_parse_proc_stat() -> None:
    s = parse_proc_stat(proc_stat(2000, 100_000))
    assert s.steal == 2000 and s.total == 100_000 and s.fraction == pytest.approx(0.02)


def test_detached_restorer_steal_end_to_end_with_scripted_proc_stat(tmp_path) -> None:
    cfg = (
        'policy = "nmi-factor:200"\n[completion]\nmode = "steal"\nsettle_s = 20\nmax_s = 900\npoll_s = 2\n'
        "steal_margin_pct = 1.0\n"
    )
    fr = make_root(tmp_path, "pre-v6.0", cfg)  # /proc/stat at pre: 2 % cumulative steal
    before = fr.values()
    assert fr.guard("run-phase", "check")[0] == 0
    assert fr.guard("run-phase", "pre")[0] == 0
    assert fr.journal_data()["steal_baseline"]["fraction"] == pytest.approx(0.02)  # type: ignore[index]
    assert fr.guard("run-phase", "post")[0] == 0
    assert fr.get("kernel.watchdog_thresh") == "30"

    sc = Script([(60.0, 0.35), (1e9, 0.01)])
    stat = fr.root / "proc/stat"

    def sleep(s: float) -> None:
        sc.sleep(s)
        stat.write_text(proc_stat(2000 + int(sc.steal), 100_000 + int(sc.total)))

    paths = Paths(fr.root)
    guard = Guard(paths, load_config(paths.default_config, required=True))
    assert run_restorer(guard, "completion", fr.spawned[-1][1], clock=sc.clock, sleep=sleep) == 0
    assert 80.0 <= sc.t <= 84.0
    assert fr.values() == before
    assert any("stolen time back at its pre-migration level" in line for line in fr.kmsg())
    assert "lpmsim-guard: restored kernel.watchdog_thresh 30 -> 10 (phase restorer)" in fr.kmsg()

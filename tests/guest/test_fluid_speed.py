"""The fluid mode's speed-ups change no result (issue 12, docs/performance.md).

* End watches (``lpmsim.guest.fluid._EndWatch``) skip the looks that cannot change their answer
  before the next fluid step; looking every time gives the same summary and kernel log, only fewer
  events.  The setting: the validation stress setting (1,024 vCPUs, 0.5 Gb/s, 5 % missing) cut 62 s
  after resume, with an injected bug that claims a vCPU (a disturbance of its watches) and the
  mobility flow's RTAS calls during post-copy (another).
* The step draws the activity of each episode as ``rng.choice(n, size, p)`` does, without its
  argument checks; the draws must stay those of ``Generator.choice``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lpmsim.config.loader import load_scenario
from lpmsim.guest.cpustate import CpuStates
from lpmsim.guest.fluid import FluidGuest
from lpmsim.runner import run_scenario

STRESS_CUT = [
    "platform.link_gbps=0.5",
    "migration.resume_missing_fraction=0.05",
    "partition.vcpus=1024",
    "partition.memory_gib=512",
    "sim.max_time_s=8860",
    "kernel.preset=upstream",
    'bugs=[{kind="irqs_hard_off_spin", at_s=10}]',
]


def _run(monkeypatch: pytest.MonkeyPatch, skip: bool) -> tuple[dict[str, Any], list[str], int]:
    monkeypatch.setattr(FluidGuest, "skip_looks", skip)
    log: list[str] = []
    summary = run_scenario(load_scenario(preset="lpm-2022", overrides=STRESS_CUT), kernel_log=log)
    events = int(summary["sim"].pop("events"))
    summary.pop("wall_s")
    return summary, log, events


@pytest.mark.slow
def test_skipped_looks_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fast, fast_log, fast_events = _run(monkeypatch, True)
    slow, slow_log, slow_events = _run(monkeypatch, False)
    # the looks were skipped (fewer than before episodes were published one stall at a time:
    # a stall-only publication ends at its own end, its watch never parks)
    assert fast_events < slow_events
    assert fast["bugs"] and fast["events"]  # a claim happened, and reports
    assert fast == slow
    assert fast_log == slow_log


def test_choice_without_checks_draws_as_choice() -> None:
    for seed in range(200):
        g = np.random.default_rng(seed)
        p = g.random(int(g.integers(2, 12)))
        p[g.random(p.size) < 0.3] = 0.0
        p[0] += 1e-3
        p /= p.sum()
        n = int(g.integers(1, 400))
        a, b = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 1])
        want = a.choice(p.size, size=n, p=p)
        cdf = p.cumsum()
        cdf /= cdf[-1]
        got = cdf.searchsorted(b.random(n), side="right")
        assert np.array_equal(want, got)
        assert a.random() == b.random()  # the same number of uniforms used


SMALL_ANNOTATE = [  # the DTL read (annotate: steal-aware that prints), with reports
    "sim.mode=fluid",
    "platform.link_gbps=0.1",
    "migration.resume_missing_fraction=0.5",
    "mitigation.policy=annotate",
]
STRESS_256_BUG = [
    "platform.link_gbps=0.5",
    "migration.resume_missing_fraction=0.05",
    "partition.vcpus=256",
    "partition.memory_gib=128",
    "sim.max_time_s=8948",
    "kernel.preset=upstream",
    "mitigation.policy=nmi-factor:200",
    'bugs=[{kind="irqs_hard_off_spin", at_s=10}]',
]


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [("small", SMALL_ANNOTATE), ("lpm-2022", STRESS_256_BUG)],
    ids=["small-annotate", "stress-256-bug"],
)
def test_steal_only_changes_told_to_fewer_observers_change_nothing(
    monkeypatch: pytest.MonkeyPatch, preset: str, overrides: list[str]
) -> None:
    """A change of steal_frac alone reaches only the DTL (``CpuStates.skip_steal_only``); telling
    the kernel model and the stop_machine hooks too gives the same summary and kernel log."""
    out = []
    for skip in (True, False):
        monkeypatch.setattr(CpuStates, "skip_steal_only", skip)
        log: list[str] = []
        summary = run_scenario(load_scenario(preset=preset, overrides=overrides), kernel_log=log)
        summary.pop("wall_s")
        out.append((summary, log))
    assert out[0][0]["events"]  # reports happen, so the detectors' timings are compared
    assert out[0] == out[1]

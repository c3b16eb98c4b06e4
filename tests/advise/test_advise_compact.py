"""The compact comparison: the horizon after resume, the race, the detection runs."""

from __future__ import annotations

import pytest

from lpmsim.advise.candidates import candidates_for
from lpmsim.advise.compact import Budget, Tally, bug_data, race, with_horizon
from lpmsim.advise.facts import Facts
from lpmsim.config.loader import build_scenario, resolve_scenario
from lpmsim.runner import run_scenario
from lpmsim.sweeps.executors import LocalExecutor

# 64 vCPUs, 256 GiB, 1 Gb/s, pre-v6.0 (the default preset): the RTAS calls after resume stall on missing memory
FACTS = Facts(64, 256, 1.0, "pre-v6.0", "5.14.21")


def base() -> dict[str, object]:
    return FACTS.apply(resolve_scenario(preset="default"))


def test_horizon_counts_from_the_resume() -> None:
    data, resume = with_horizon(base(), 30.0, 3)
    summary = run_scenario(
        build_scenario({**data, "sim": {**data["sim"], "seed": 3}, "mitigation": {"policy": "inhibit-all"}})
    )
    vasi = summary["migration"]["vasi"]
    # the computed resume is the simulated one, within the suspension margin
    assert vasi["resumed_s"] <= resume <= vasi["resumed_s"] + 2.0
    assert summary["outcome"] == "survived"
    assert summary["migration"]["total_s"] == pytest.approx(resume + 30.0)


def test_bug_runs_last_long_enough_to_detect() -> None:
    data, resume = with_horizon(base(), 30.0, 1)
    d = bug_data(data, 30.0, resume)
    assert d["bugs"] == [{"kind": "irqs_hard_off_spin", "window_s": [5.0, 15.0], "after": "resume"}]
    assert d["sim"]["max_time_s"] >= resume + 15.0 + 66.0  # detection horizon with the defaults


def test_race_drops_a_clearly_worse_candidate_and_scores_detection() -> None:
    cands = [c for c in candidates_for(FACTS) if c.name in ("none", "guard-disable-nmi")]
    seen: list[tuple[int, int]] = []
    tally = Tally(lambda _r, done, total: seen.append((done, total)))
    ex = LocalExecutor(1)
    r, interrupted = race(base(), cands, Budget(runs=8, batch=4, horizon_s=30, detection_runs=2), ex, tally)
    assert not interrupted
    none, dis = r.get("none"), r.get("guard-disable-nmi")
    # without a mitigation the RTAS calls trip the SMP hard-lockup detector and the NMI IPI crashes
    assert none.p_down.k == none.runs == 4 and none.left_race_after == 4
    # one candidate left: the race is over after the first round
    assert dis.p_down.k == 0 and dis.runs == 4 and dis.left_race_after is None
    assert dis.detection is not None and dis.detection.detected.k == 2
    assert all(5.0 < d < 120.0 for d in dis.detection.delays_s)
    assert seen[-1] == (4 + 4 + 2 * 2, 4 + 4 + 2 * 2)  # the planned 8 + 8 shrank as the race ended

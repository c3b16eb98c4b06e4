"""Candidates per kernel, the deployment files (loaded by the guard's own loader), the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from lpmsim.advise.candidates import candidates_for
from lpmsim.advise.deploy import guard_toml, instructions, sysctl_lines
from lpmsim.advise.facts import Facts
from lpmsim.advise.recommend import choose
from lpmsim.advise.results import Race, Scored
from lpmsim.guard.config import load_config
from lpmsim.guard.policy import parse_policy as guard_policy
from lpmsim.policies.spec import parse_policy
from lpmsim.sweeps.stats import Proportion

OLD = Facts(64, 256, 1.0, "pre-v6.0", "5.14.21")
NEW = Facts(64, 256, 1.0, "v6.6", "6.6.0")


def names(f: Facts) -> list[str]:
    return [c.name for c in candidates_for(f)]


def test_candidates_per_kernel() -> None:
    assert names(NEW) == [
        "none",
        "sysctl-factor-400",
        "sysctl-factor-1000",
        "guard-disable-nmi",
        "guard-inhibit-all",
    ]
    assert names(OLD) == [
        "none",
        "guard-factor-200",
        "guard-factor-500",
        "guard-disable-nmi",
        "guard-inhibit-all",
    ]
    # the factor is already 500: only 1000 raises it; the NMI watchdog off: nothing to disable or raise
    assert names(Facts(8, 8, 1, "v6.0", settings={"kernel.nmi_wd_lpm_factor": 500}))[1:2] == [
        "sysctl-factor-1000"
    ]
    assert names(Facts(8, 8, 1, "v6.6", settings={"kernel.nmi_watchdog": 0})) == ["none", "guard-inhibit-all"]
    # watchdog_thresh 30: 200 % would ask for 90 s, clamped to 60 (as 500 %): offered once
    assert names(Facts(8, 8, 1, "pre-v6.0", settings={"kernel.watchdog_thresh": 30}))[1:3] == [
        "guard-factor-200",
        "guard-disable-nmi",
    ]


def test_panic_settings_add_a_candidate() -> None:
    f = Facts(8, 8, 1, "v6.6", settings={"kernel.hardlockup_panic": 1, "workqueue.panic_on_stall": 3})
    c = next(c for c in candidates_for(f) if c.name == "guard-no-panic")
    assert c.overrides == ("kernel.hardlockup_panic=0", "kernel.wq_panic_on_stall=0")
    assert c.deploy.guard_overrides == {"kernel.hardlockup_panic": 0, "workqueue.panic_on_stall": 0}


@pytest.mark.parametrize("facts", [OLD, NEW, Facts(8, 8, 1, "v6.6", settings={"kernel.softlockup_panic": 1})])
def test_every_candidate_is_a_valid_policy_and_deployable(facts: Facts, tmp_path: Path) -> None:
    for c in candidates_for(facts):
        parse_policy(c.policy)  # the simulator takes it
        text = guard_toml(c, facts)
        if c.deploy.kind != "guard":
            assert text is None
            continue
        assert text is not None
        path = tmp_path / f"{c.name}.toml"
        path.write_text(text)
        cfg = load_config(path, required=True)  # the guard's own loader accepts the file
        assert cfg.policy == guard_policy(c.deploy.guard_policy or "")
        assert cfg.overrides == c.deploy.guard_overrides
        if c.policy.startswith("guard:"):  # the simulated policy is the deployed one
            assert c.policy == f"guard:{c.deploy.guard_policy}"


def test_sysctl_lines() -> None:
    c = candidates_for(NEW)[1]
    assert sysctl_lines(c) == ["kernel.nmi_wd_lpm_factor = 400"]
    text = instructions(c, NEW)
    assert "sysctl -w kernel.nmi_wd_lpm_factor=400" in text and text.endswith(
        "kernel.nmi_wd_lpm_factor = 400\n"
    )
    assert instructions(candidates_for(NEW)[0], NEW).startswith("Nothing to deploy")


def scored(name: str, k: int, n: int) -> Scored:
    p = Proportion(k, n)
    return Scored(name, n, 0, p, Proportion(0, n), p, {}, {})


def test_choose_the_least_intrusive_of_the_safest() -> None:
    r = Race(1.0, 0.0, (scored("none", 8, 8), scored("a", 0, 8), scored("b", 0, 8), scored("c", 1, 8)))
    ch = choose(r)
    assert ch.name == "a"
    assert ch.separated_from == ("none",)  # c (1/8) is not significantly riskier than a (0/8)
    assert ch.not_separated == ()
    r = Race(1.0, 0.0, (scored("none", 1, 8), scored("a", 0, 8)))
    ch = choose(r)
    assert (ch.name, ch.not_separated) == ("a", ("none",))
    assert "more --runs needed" in ch.reason

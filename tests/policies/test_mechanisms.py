"""The policy registry, and each mechanism acting at its point of the migration flow.

Runs use the ``small`` preset (8 vCPUs, exact mode, ~1 s each).  Times are checked against the
flow's own record (``lpm`` times of the summary, the VASI times of the migration), so that each
assertion says *when* a mechanism acted, not only that it did.
"""

from __future__ import annotations

import math
import re

import pytest

from lpmsim.config.loader import ScenarioError, load_scenario
from lpmsim.policies.spec import PolicyError, parse_policy
from lpmsim.runner import RunState, simulate


def run(policy: str, *extra: str) -> tuple[RunState, list[str]]:
    sc = load_scenario(preset="small", overrides=[f"mitigation.policy={policy}", *extra])
    st = simulate(sc)
    assert st.kernel is not None
    return st, st.kernel.model.log.lines()


def stamp(line: str) -> float:
    m = re.match(r"\[\s*([0-9.]+)\]", line)
    assert m is not None, line
    return float(m.group(1))


def find(lines: list[str], text: str) -> list[str]:
    return [ln for ln in lines if text in ln]


def uptime(st: RunState, key: str) -> float:
    """A flow time (``lpm`` key) as the printk timestamp shows it."""
    assert st.kernel is not None and st.kernel.mobility is not None
    t = st.kernel.mobility.times[key]
    assert t is not None
    return t + st.scenario.kernel.uptime_at_start_s


# -- the registry -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("none", ["none"]),
        ("nmi-factor", ["nmi-factor"]),
        ("nmi-factor:350", ["nmi-factor:350"]),
        ("freeze-user:completed+nmi-factor:200", ["freeze-user:completed", "nmi-factor:200"]),
        ("steal-aware+annotate", ["steal-aware", "annotate"]),
        ("guard:nmi-factor:300", ["guard:nmi-factor:300"]),
        ("guard:inhibit-all", ["guard:inhibit-all"]),
    ],
)
def test_parse_accepts(text: str, parts: list[str]) -> None:
    assert [str(p) for p in parse_policy(text).parts] == parts


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("bogus", "unknown policy 'bogus'"),
        ("", "empty policy"),
        ("freeze-user", "needs an argument"),
        ("freeze-user:later", "expected freeze-user:dt-update or freeze-user:completed"),
        ("none:3", "takes no argument"),
        ("nmi-factor:-5", "whole percentage"),
        ("nmi-factor:99999999999", "unsigned int"),
        ("none+nmi-factor:200", "both set the hard-lockup timeout"),
        ("disable-nmi+adaptive-factor", "both set the hard-lockup timeout"),
        ("annotate+annotate", "given twice"),
        ("guard:freeze-user", "the guard applies one of"),
        ("guard:none+annotate", "combine it with nothing else"),
    ],
)
def test_parse_refuses(text: str, needle: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(needle)):
        parse_policy(text)


def test_options_checked_and_defaulted() -> None:
    spec = parse_policy("adaptive-factor", {"faults": 20})
    assert spec.option("faults") == 20.0 and spec.option("max_pct") == 1000
    assert parse_policy("guard:none").option("completion") == "steal"  # as lpmsim guard's default
    with pytest.raises(PolicyError, match="hold_s: unknown option for policy 'none'"):
        parse_policy("none", {"hold_s": 3})
    with pytest.raises(PolicyError, match="completion: expected one of hold, steal"):
        parse_policy("guard:none", {"completion": "later"})
    with pytest.raises(PolicyError, match=r"max_pct: 1.5 .*whole number|max_pct: expected a whole number"):
        parse_policy("adaptive-factor", {"max_pct": 1.5})


def test_scenario_errors_name_the_field() -> None:
    with pytest.raises(ScenarioError, match=r"^mitigation\.policy: unknown policy"):
        load_scenario(preset="small", overrides=["mitigation.policy=bogus"])
    with pytest.raises(ScenarioError, match=r"^mitigation\.options: faults: -1"):
        load_scenario(
            preset="small", overrides=["mitigation.policy=adaptive-factor", "mitigation.options={faults=-1}"]
        )


# -- the mechanisms in the flow ------------------------------------------------------------------------


def test_nmi_factor_set_at_suspending_and_cleared_at_completion() -> None:
    st, lines = run("nmi-factor:300")
    set_, clr = find(lines, "timeout factor to 300%"), find(lines, "timeout factor to 0%")
    assert len(set_) == 1 and len(clr) == 1
    assert stamp(set_[0]) == pytest.approx(uptime(st, "suspending_seen_s"))
    assert stamp(clr[0]) == pytest.approx(uptime(st, "completed_seen_s"))
    assert st.kernel is not None and st.kernel.model.hard.pct == 0


def test_none_sets_no_factor_but_v66_still_waits() -> None:
    _st, lines = run("none")
    assert not find(lines, "timeout factor")
    assert find(lines, "mobility: waiting for memory transfer to complete...")


def test_kernel_policy_follows_the_version() -> None:
    _st, lines = run("kernel", "kernel.nmi_wd_lpm_factor=150")
    assert find(lines, "timeout factor to 150%")
    _st, old = run("kernel", "kernel.version=pre-v6.0")
    assert not find(old, "timeout factor") and not find(old, "waiting for memory transfer")
    # a policy that needs the completion brings the wait along (Dufour's patch 1, 882c0d1704cf)
    _st, old_f = run("nmi-factor:200", "kernel.version=pre-v6.0")
    assert find(old_f, "timeout factor to 200%") and find(old_f, "waiting for memory transfer")


def test_disable_nmi_stops_only_the_hard_detector_and_restarts_it() -> None:
    st, lines = run("disable-nmi")
    m = st.kernel.model if st.kernel is not None else None
    assert m is not None
    assert m.hard.enabled and m.soft.enabled
    assert not find(lines, "timeout factor")


def test_inhibit_all_restores_every_switch_at_completion() -> None:
    st, _lines = run("inhibit-all")
    assert st.kernel is not None
    m = st.kernel.model
    sc = st.scenario.kernel
    assert (m.sys.nmi_watchdog, m.sys.soft_watchdog, m.sys.rcu_cpu_stall_suppress) == (1, 1, 0)
    assert m.sys.wq_watchdog_thresh == sc.wq_watchdog_thresh
    assert m.sys.hung_task_timeout_secs == sc.hung_task_timeout_secs
    assert m.hard.enabled and m.soft.enabled and m.rcu.enabled and m.wq.enabled


@pytest.mark.parametrize(("until", "key"), [("dt-update", "fixup_done_s"), ("completed", "completed_seen_s")])
def test_freeze_user_thaws_at_its_point(until: str, key: str) -> None:
    st, lines = run(f"freeze-user:{until}")
    frz = find(lines, "Freezing user space processes completed")
    thaw = find(lines, "Restarting tasks ... done.")
    assert len(frz) == 1 and len(thaw) == 1
    assert stamp(frz[0]) == pytest.approx(uptime(st, "suspending_seen_s"))
    assert stamp(thaw[0]) == pytest.approx(uptime(st, key))
    assert st.guest is not None and not st.guest.frozen


def test_freeze_user_completed_cuts_user_faults() -> None:
    st_none, _ = run("none")
    st_frz, _ = run("freeze-user:completed")
    user_none = st_none.recorder.ctx_faults["user"]
    assert user_none > 0
    assert st_frz.recorder.ctx_faults["user"] == 0  # frozen from suspend to completion: no user fault
    assert st_frz.recorder.count < st_none.recorder.count


def test_guard_v66_applies_at_request_and_restores_at_return() -> None:
    st, lines = run("guard:nmi-factor:300")
    applied = find(
        lines, "lpmsim-guard: applied policy nmi-factor:300 (phase pre): kernel.nmi_wd_lpm_factor 200 -> 300"
    )
    assert len(applied) == 1 and stamp(applied[0]) == 0.0
    assert find(lines, "timeout factor to 300%")  # the kernel read the guard's value at SUSPENDING
    restored = find(lines, "lpmsim-guard: restored kernel.nmi_wd_lpm_factor 300 -> 200 (phase post)")
    assert len(restored) == 1 and stamp(restored[0]) == pytest.approx(uptime(st, "end_s"))


def test_guard_pre_v60_hold_restores_hold_s_after_post() -> None:
    st, lines = run(
        "guard:nmi-factor:200",
        "kernel.version=pre-v6.0",
        'mitigation.options={completion="hold", hold_s=7}',
    )
    # emulation on an old kernel: watchdog_thresh 10 -> 10 + 200 % = 30
    assert find(lines, "kernel.watchdog_thresh 10 -> 30")
    restored = find(lines, "lpmsim-guard: restored kernel.watchdog_thresh 30 -> 10 (phase restorer)")
    assert len(restored) == 1
    assert stamp(restored[0]) == pytest.approx(uptime(st, "end_s") + 7)


def test_guard_pre_v60_steal_restores_settle_s_after_completion() -> None:
    st, lines = run("guard:disable-nmi", "kernel.version=pre-v6.0", "mitigation.options={settle_s=5}")
    assert st.completed_s is not None
    restored = find(lines, "lpmsim-guard: restored kernel.nmi_watchdog 0 -> 1 (phase restorer)")
    assert len(restored) == 1
    post = uptime(st, "end_s") - st.scenario.kernel.uptime_at_start_s
    assert stamp(restored[0]) == pytest.approx(max(post, st.completed_s) + 5)


def test_adaptive_factor_follows_the_longest_stall() -> None:
    st, lines = run("adaptive-factor", "mitigation.options={faults=20, max_pct=400}")
    sets = [ln for ln in find(lines, "timeout factor to") if "to 0%" not in ln]
    assert sets, "the adaptation set a factor after resume"
    assert all(stamp(ln) > uptime(st, "resume_s") for ln in sets)
    pcts = [int(m.group(1)) for ln in sets if (m := re.search(r"to (\d+)%", ln))]
    # ceil(100 * faults * longest stall so far / watchdog_thresh), at most max_pct: the longest
    # stall only grows, so the values rise, up to the value of the longest stall of the run
    assert pcts == sorted(pcts) and len(set(pcts)) == len(pcts)
    assert pcts[-1] <= min(400, math.ceil(100 * 20 * st.recorder.max_stall / 10))
    assert find(lines, "timeout factor to 0%")

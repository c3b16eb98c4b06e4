"""The seed discussion's facts, reproduced as emergent results (docs/validation.md).

Nothing here is scripted: every report, panic and crash comes out of the transfer queue, the
guest's vCPUs and the kernel's detector rules.  The "stress" setting is the ``lpm-2022`` preset
(1,024 vCPUs' worth of the seed's machine: shared FIFO, SLES watchdog defaults, oltp) scaled at a
constant 0.5 GiB per vCPU on a constant 0.5 Gb/s link with 5 % of memory missing at resume — a
link slow enough that the queue of demand faults, not the page size, sets the latency.  Seeds are
fixed; each assertion states its tolerance.  Runs stop ``HORIZON_S`` after resume unless noted.
"""

from __future__ import annotations

from typing import Any

import pytest

from lpmsim.config.loader import load_scenario
from lpmsim.runner import run_scenario

HORIZON_S = 150.0
LINK_GBPS = 0.5
GIB_PER_VCPU = 0.5
SEEDS = (1, 2)


def stress(
    vcpus: int, policy: str, seed: int, *extra: str, horizon: float | None = HORIZON_S
) -> dict[str, Any]:
    mem = vcpus * GIB_PER_VCPU
    over = [
        # The kernel these facts were established on: 6.6.3 (the preset's kernel before issue 13, the
        # `v6.6` alias).  The preset itself now runs the 2022 distribution kernel (SLES 15 SP4: no
        # factor, RTAS entered with MSR[RI]=0), whose post-resume RTAS crash comes first.
        "kernel.version=6.6.3",
        f"partition.vcpus={vcpus}",
        f"partition.memory_gib={mem}",
        f"platform.link_gbps={LINK_GBPS}",
        "migration.resume_missing_fraction=0.05",
        f"mitigation.policy={policy}",
        *extra,
    ]
    if horizon is not None:
        # the forced pre-copy sends every page once, then SUSPENDING is seen within 1 s
        precopy = mem * 2**30 * 8 / (LINK_GBPS * 1e9)
        over.append(f"sim.max_time_s={precopy + 2 + horizon}")
    return run_scenario(load_scenario(preset="lpm-2022", overrides=over, seed=seed))


def died(s: dict[str, Any]) -> bool:
    return s["outcome"] in ("panic", "crash")


def reports(s: dict[str, Any], det: str) -> int:
    return int(s["watchdogs"][det]["reports"])


# -- 1 and 5: more vCPUs, more hard lockups; ~2,000 vCPUs: NMI IPIs unanswered, a crash ---------------


def test_fact1_hard_lockups_rise_with_vcpus() -> None:
    sizes = (64, 256, 1024, 1920)
    hard = {n: sum(reports(stress(n, "none", s), "hardlockup") for s in SEEDS) for n in sizes}
    dead = {n: sum(died(stress(n, "none", s)) for s in SEEDS) for n in sizes}
    # monotone non-decreasing in the number of vCPUs, and strictly more at the top than at the bottom
    assert [hard[n] for n in sizes] == sorted(hard[n] for n in sizes), hard
    # a rise, not a seed's luck: at 64 vCPUs a hard-lockup report comes in about one run in four
    # (docs/validation.md), so two seeds may hold one
    assert hard[1920] >= 2 and hard[1920] > hard[64], hard
    assert [dead[n] for n in sizes] == sorted(dead[n] for n in sizes), dead
    assert dead[64] == 0 and dead[1920] == len(SEEDS), dead


def test_fact5_two_thousand_vcpus_nmi_ipi_unanswered_then_crash() -> None:
    for s in SEEDS:
        out = stress(1920, "none", s)
        assert out["watchdogs"]["nmi_ipi"]["timed_out"] >= 1
        assert died(out)
        assert out["crash"]["cause"] == "system_reset_dump"


# -- 2 and 3: disable-nmi keeps RCU stalls; nmi-factor:200 removes the hard lockups and crashes ------


def test_fact2_disable_nmi_still_reports_rcu_stalls() -> None:
    """disable-nmi silences the hard-lockup detector and its crashes, not the other detectors: the
    RTAS call after the resume (hard-disabled, stalled at each missing firmware page) outlasts the
    RCU stall timeout (upstream: 21 s) and the RCU stall detector reports it (seed 1).

    Re-derived when the fluid mode stopped publishing an episode of user or kernel code as one
    continuous stall (docs/model/agreement.md, fix 6): before, this setting gave 2+ soft lockups per
    run, all of that artefact (exact at 64 vCPUs shows none).  The corrected model gives none here,
    as the kernel's rules imply: the one section long enough is the post-resume RTAS call, and the
    resume's touch_nmi_watchdog() also touches the soft-lockup watchdog (touch_softlockup_watchdog:
    the next hrtimer run only re-bases report_ts), so its time is not counted.  The discussion's
    soft lockups under disable-nmi need kernel sections of 20+ s that this setting does not make."""
    rcu = 0
    for s in SEEDS:
        # upstream defaults: RCU stall timeout 21 s (SLES: 60 s)
        out = stress(1024, "disable-nmi", s, "kernel.preset=upstream")
        assert reports(out, "hardlockup") == 0 and not died(out)
        assert reports(out, "softlockup") == 0  # (see above: no false soft lockups)
        rcu += reports(out, "rcu_stall")
    assert rcu >= 1


SEEDS8 = tuple(range(1, 9))


def test_fact3_nmi_factor_removes_hard_lockups_and_crashes() -> None:
    """Without a mitigation the SMP checker reports the post-resume RTAS call's CPU (hard-disabled
    past 15 s) and sends it an NMI IPI; the IPI is taken when the fault it waits on is served, and
    where that takes longer than the IPI's timeout (the 1 s ``udelay(1)`` loop, 1.1 s) the late
    system reset is a dump, or, taken in time, it may land with MSR[RI]=0.  With nmi-factor:200 the
    timeout is 45 s: no report, no crash, in every seed.

    Re-derived at issue 13 (the merged kernel-fidelity changes: the NMI IPI loop's real length, the
    mobility flow's jiffy-rounded sleeps, RCU reports that touch the watchdogs): over seeds 1-16
    `none` reports the RTAS CPU in 14 and dies in 2 (one dump, one RI=0); nmi-factor:200 never
    reports or dies.  Asserted over seeds 1-8: at least 6 reported and at least 1 death for
    `none` (7 and 1 measured), none of either for nmi-factor:200."""
    hard_seeds = dead = 0
    for s in SEEDS8:
        base = stress(1024, "none", s)
        f200 = stress(1024, "nmi-factor:200", s)
        hard_seeds += reports(base, "hardlockup") >= 1
        if died(base):
            dead += 1
            assert reports(base, "hardlockup") >= 1
            assert base["crash"]["cause"] in ("system_reset_dump", "unrecoverable_system_reset"), base[
                "crash"
            ]
        assert reports(f200, "hardlockup") == 0 and not died(f200)
    assert hard_seeds >= 6 and dead >= 1, (hard_seeds, dead)


def test_fact3_nmi_factor_still_detects_an_injected_hard_lockup_later() -> None:
    # 256 vCPUs (where `none` survives the migration itself): a CPU spins with interrupts
    # hard-disabled for ever from 30 s after resume, during the post-copy
    bug = 'bugs=[{kind="irqs_hard_off_spin", at_s=30}]'
    delay = {}
    for pol in ("none", "nmi-factor:200"):
        out = stress(256, pol, 1, bug, horizon=None)
        (b,) = out["bugs"]
        assert not b["missed"] and b["detected_by"] == "hardlockup", b
        delay[pol] = b["delay_s"]
    # SMP checker: 15 s (x 3/2 of 10 s) without the factor, 45 s with 200 %, each plus at most a
    # 4 s heartbeat period and the time the pending mask needs to be refilled; or up to one
    # heartbeat period less, when the stuck CPU had cleared its pending bit before it got stuck and
    # the round's last CPU reset wd_smp_last_reset_tb just before the bug started
    assert 15 - 4 <= delay["none"] <= 15 + 8, delay
    assert 45 - 4 <= delay["nmi-factor:200"] <= 45 + 8, delay


# -- 4: the RTAS call right after resume --------------------------------------------------------------


def test_fact4_post_resume_rtas_call_trips_the_calling_cpu() -> None:
    # small partition on a 0.2 Gb/s link: the firmware pages the post-migration RTAS calls touch are
    # missing, so post_mobility_fixup() lasts longer than the SMP threshold (15 s) on drmgr's CPU
    hits = 0
    for s in (1, 2, 3):
        sc = load_scenario(
            preset="small", overrides=["platform.link_gbps=0.2", "mitigation.policy=none"], seed=s
        )
        out = run_scenario(sc)
        lpm = out["lpm"]
        fixup = lpm["fixup_done_s"] - lpm["resume_s"]
        if fixup <= 15.0:
            continue
        hard = [
            e
            for e in out["events"]
            if e["detector"] == "hardlockup"
            and e["kind"] in ("smp-detected", "self-detected")
            and lpm["resume_s"] <= e["time_s"] <= lpm["fixup_done_s"]
        ]
        assert hard and sc.kernel.drmgr_cpu in hard[0]["cpus"], hard
        hits += 1
    assert hits >= 2


# -- 6: freezing user tasks until completion ----------------------------------------------------------


def test_fact6_freeze_user_completed_cuts_demand_faults_and_reports() -> None:
    # demand faults: 256 vCPUs, both to completion (the same post-copy length, 110 s)
    faults = {
        pol: sum(stress(256, pol, s, horizon=None)["migration"]["demand_faults"] for s in SEEDS)
        for pol in ("none", "freeze-user:completed")
    }
    assert faults["freeze-user:completed"] < 0.95 * faults["none"], faults
    # reports and the latency tail: 1,024 vCPUs, 150 s after resume.  With user tasks frozen fewer
    # vCPUs fault at once: the fault latency's tail is shorter in every seed and freeze-user never
    # reports more than `none`.
    # Re-derived at issue 13: the deaths left at this setting come from the post-resume RTAS call's
    # NMI IPI (fact 3), which lands on the firmware's own faults; freezing user tasks shortens the
    # queue only slightly at 1,024 vCPUs (p99 -5 %), so it no longer decides whether that IPI is
    # answered in time (seeds 1-8: `none` dies in seed 5, freeze-user in seed 6).  The claim kept
    # is the one the discussion made: fewer faults, a shorter tail, no more reports.
    for s in SEEDS:
        base = stress(1024, "none", s)
        frz = stress(1024, "freeze-user:completed", s)
        rep = {
            name: sum(reports(out, d) for d in ("hardlockup", "softlockup", "rcu_stall"))
            for name, out in (("none", base), ("frz", frz))
        }
        assert rep["frz"] <= rep["none"], rep
        assert frz["migration"]["fault_latency_s"]["p99"] < base["migration"]["fault_latency_s"]["p99"]


# -- 7: demand-first vs shared-fifo on a saturated link ---------------------------------------------


def test_fact7_demand_first_cuts_the_latency_tail_by_about_ten() -> None:
    lat = {}
    for disc in ("shared-fifo", "demand-first"):
        sc = load_scenario(
            preset="default",
            overrides=[
                "platform.page_kib=4",
                "platform.link_gbps=10",
                "platform.push_window_pages=512",
                f"platform.discipline={disc}",
                "partition.memory_gib=64",
                "migration.resume_missing_fraction=0.05",
            ],
        )
        out = run_scenario(sc)
        assert out["migration"]["link_busy_frac"] > 0.99  # saturated
        lat[disc] = out["migration"]["fault_latency_s"]
    ratio_mean = lat["shared-fifo"]["mean"] / lat["demand-first"]["mean"]
    ratio_p99 = lat["shared-fifo"]["p99"] / lat["demand-first"]["p99"]
    # QEMU postcopy-preempt: 10.7 ms -> 0.57 ms (x18.8); "about an order of magnitude": x8 or more
    assert ratio_mean >= 8 and ratio_p99 >= 8, lat


# -- 8: Nathan Lynch's point: other panic settings change the crash mode -----------------------------


@pytest.mark.parametrize(
    ("extra", "cause"),
    [
        ((), "system_reset_dump"),
        (("kernel.hardlockup_panic=1",), "hardlockup_panic"),
        (("kernel.rcu_cpu_stall_timeout=5", "kernel.panic_on_rcu_stall=1"), "rcu_stall_panic"),
    ],
)
def test_fact8_panic_settings_change_the_crash_mode(extra: tuple[str, ...], cause: str) -> None:
    """The same runs die differently with another panic setting: without one the hard lockup's NMI
    IPI ends in a system-reset dump; hardlockup_panic=1 panics at the SMP report itself; a 5 s RCU
    stall timeout with panic_on_rcu_stall panics at the RCU report of the post-resume RTAS call.

    Re-derived with fix 6 (docs/model/agreement.md): the soft lockups of this setting were the
    fluid artefact, so softlockup_panic=1 no longer changes anything here (fact 2 says why the RTAS
    call makes no soft lockup); hardlockup_panic takes its place.  And `none` dies in seed 1 only,
    so a run may survive; every run that dies dies of the setting's cause, or of the hard lockup's
    dump where that came first and the setting's detector never reported (a race it lost).  Seeds
    1-8: at issue 13 `none` dies in one of them (seed 5, fact 3)."""
    detector = {"hardlockup_panic": "hardlockup", "rcu_stall_panic": "rcu_stall"}.get(cause)
    causes = []
    for s in SEEDS8:
        out = stress(1024, "none", s, *extra)
        if not died(out):
            continue
        causes.append(out["crash"]["cause"])
        if out["crash"]["cause"] != cause:
            assert detector is not None and out["crash"]["cause"] == "system_reset_dump", out["crash"]
            assert reports(out, detector) == 0, out["crash"]
    assert cause in causes, causes  # the setting does change the crash mode

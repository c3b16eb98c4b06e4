"""The version table (lpmsim.kernel.versions): real versions, backports, distributions, aliases,
and the validation of kernel.version / kernel.backports / kernel.wq_panic_on_stall."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lpmsim.cli.main import app
from lpmsim.config.loader import load_scenario
from lpmsim.kernel.config import Kernel
from lpmsim.kernel.versions import (
    ALIASES,
    BEHAVIOURS,
    DISTROS,
    KVersion,
    VersionError,
    commit_behaviour,
    parse,
)

from .cases import INF, s
from .harness import BASE, merge, run_case

runner = CliRunner()


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("5.14", KVersion(5, 14, 0)),
        ("6.6.3", KVersion(6, 6, 3)),
        ("5.14.21-150400.24.46-default", KVersion(5, 14, 21)),
        ("6.12.0-55.el10", KVersion(6, 12, 0)),
    ],
)
def test_parse(text: str, version: KVersion) -> None:
    assert parse(text) == version


def test_version_order_is_numeric() -> None:
    assert parse("5.9") < parse("5.14") < parse("5.14.21") < parse("6.0") < parse("6.6.3") < parse("6.12")


@pytest.mark.parametrize(
    ("alias", "version", "distro"),
    [("pre-v6.0", "5.14.21", "sles15-sp4"), ("v6.0", "6.0", None), ("v6.6", "6.6.3", None)],
)
def test_aliases_map_as_documented(alias: str, version: str, distro: str | None) -> None:
    assert ALIASES[alias] == (version, distro)
    k = Kernel(version=alias)
    assert (k.version, k.distro) == (version, distro)


def test_aliases_keep_the_behaviours_that_were_right() -> None:
    old = Kernel(version="pre-v6.0")  # the 2022 distribution kernel
    assert (old.has_lpm_factor, old.waits_for_completion, old.rtas_ri0) == (False, False, True)
    assert (old.rcu_reset, old.wd_rework) == ("rest_of_gp", True)
    v60 = Kernel(version="v6.0")  # the LPM series; its RCU reset is a80be428fbc1's (v5.15), not the old one
    assert (v60.has_lpm_factor, v60.waits_for_completion, v60.rtas_ri0, v60.rcu_reset) == (
        True,
        True,
        False,
        "timeout",
    )
    assert Kernel(version="v6.6").rcu_reset == "third_fqs"


@pytest.mark.parametrize(
    ("version", "backports", "rcu_reset"),
    [
        ("5.14", (), "rest_of_gp"),
        ("5.15", (), "timeout"),
        ("6.6.2", (), "timeout"),
        ("6.6.3", (), "third_fqs"),  # b96e7a5fa0ba in 6.6-stable
        ("6.7", (), "third_fqs"),
        ("5.14", ("a80be428fbc1",), "timeout"),
        ("5.14", ("b96e7a5fa0ba",), "third_fqs"),
    ],
)
def test_rcu_reset_by_version_and_backport(version: str, backports: tuple[str, ...], rcu_reset: str) -> None:
    assert Kernel(version=version, backports=backports).rcu_reset == rcu_reset


def test_backported_behaviours() -> None:
    assert (
        Kernel(version="5.14").rtas_ri0 and not Kernel(version="5.14", backports=("b6b1c3ce06ca",)).rtas_ri0
    )
    assert not Kernel(version="5.16").wd_rework and Kernel(version="5.17").wd_rework
    assert Kernel(version="5.14", backports=("76521c4b0291",)).wd_rework
    # the LPM factor went to 5.19.y from 5.19.4, without the completion wait (882c0d1704cf)
    assert not Kernel(version="5.19.3").has_lpm_factor and Kernel(version="5.19.4").has_lpm_factor
    assert not Kernel(version="5.19.4").waits_for_completion and Kernel(version="6.0").waits_for_completion
    assert Kernel(version="5.14", backports=("f5e74e836097",)).has_lpm_factor  # a companion commit
    assert not Kernel(version="6.11").wq_has_panic_on_stall and Kernel(version="6.12").wq_has_panic_on_stall
    assert not Kernel(version="5.18").rcu_trailer_ncpus and Kernel(version="5.19").rcu_trailer_ncpus
    # 3ab955de929a came with the RCU pull for v6.3 (not v6.2)
    assert not Kernel(version="6.2").rcu_trailer_prefixed and Kernel(version="6.3").rcu_trailer_prefixed
    # 265d6e588d87 (v5.8) and its stable backports of 29 Sep 2020
    assert Kernel(version="5.7").sreset_ri0_panics and not Kernel(version="5.8").sreset_ri0_panics
    for before, after in (("4.14.199", "4.14.200"), ("4.19.148", "4.19.149"), ("5.4.68", "5.4.69")):
        assert Kernel(version=before).sreset_ri0_panics and not Kernel(version=after).sreset_ri0_panics
    assert Kernel(version="5.10").sreset_ri0_panics is False


def test_commit_prefixes() -> None:
    assert commit_behaviour("b96e7a5fa0ba") == "rcu_reset_third_fqs"
    assert commit_behaviour("b96e7a5") == "rcu_reset_third_fqs"
    assert commit_behaviour("B96E7A5FA0BA438E") == "rcu_reset_third_fqs"
    with pytest.raises(VersionError, match="unknown commit 'deadbeef'"):
        commit_behaviour("deadbeef")


def test_distro_is_version_plus_backports() -> None:
    d = DISTROS["sles15-sp4"]
    k = Kernel(distro="sles15-sp4")
    assert (k.version, k.release) == (d.version, d.release)
    plain = Kernel(version=d.version)
    assert [b.name for b in BEHAVIOURS if k.has(b.name) != plain.has(b.name)] == ["wd_rework"]
    # a SLES 15 SP4 release is that distribution's kernel, and keeps its own uname -r
    r = Kernel(version="5.14.21-150400.24.46-default")
    assert (r.distro, r.release, r.wd_rework) == ("sles15-sp4", "5.14.21-150400.24.46-default", True)


def test_release_strings() -> None:
    assert Kernel(version="6.12").release == "6.12.0"
    assert Kernel(version="6.6.3").release == "6.6.3"
    assert Kernel().release == "6.12.0"  # the default kernel


def test_unverified_ids_are_said() -> None:
    for b in BEHAVIOURS:
        if b.commit is None:
            assert "UNVERIFIED" in b.note, b.name


@pytest.mark.parametrize(
    ("commit", "behaviour", "prop"),
    [
        ("80d530b47da4", "rcu_trailer_ncpus", "rcu_trailer_ncpus"),
        ("3ab955de929a", "rcu_trailer_pr_err", "rcu_trailer_prefixed"),
        ("073107b39e55", "wq_panic_on_stall", "wq_has_panic_on_stall"),
    ],
)
def test_verified_ids_are_backportable(commit: str, behaviour: str, prop: str) -> None:
    assert commit_behaviour(commit) == behaviour
    assert not getattr(Kernel(version="5.14"), prop) and getattr(
        Kernel(version="5.14", backports=(commit,)), prop
    )


def test_sreset_and_taint_ids_are_backportable() -> None:
    assert commit_behaviour("265d6e588d87") == "sreset_ri0_die"
    assert not Kernel(version="5.4", backports=("265d6e588d87",)).sreset_ri0_panics
    assert commit_behaviour("2852ca7fba9f") == "taint_test"
    assert Kernel(version="5.14", backports=("2852ca7fba9f",)).taint_positions == 19


def test_every_behaviour_has_a_verified_id_but_the_rcu_irq_work() -> None:
    """Only "rcu: Make RCU CPU stall warnings check for irq-disabled CPUs" lacks its id (found as the
    parent of 83b6ca1fede7 in the v4.15 RCU pull, not by its own id)."""
    unverified = [b.name for b in BEHAVIOURS if b.commit is None]
    assert unverified == ["rcu_stall_irq_work"]
    assert all(len(b.commit) == 12 for b in BEHAVIOURS if b.commit is not None)


# -- the three behaviours of issue 13 section 3, now rows of the table ------------------------------
@pytest.mark.parametrize(
    ("version", "backports", "qs"),
    [
        ("5.4", (), False),
        ("5.5", (), True),  # 366237e7b083
        ("6.6.3", (), True),
        ("6.13", (), True),
        ("6.14", (), False),  # c861cac950fb: under curstate > MULTI_STOP_PREPARE
        ("5.4", ("366237e7b083",), True),
        ("6.12", ("c861cac950fb",), False),
        ("6.6", ("c861cac950fb",), False),
    ],
)
def test_stop_machine_rcu_qs_by_version_and_backport(
    version: str, backports: tuple[str, ...], qs: bool
) -> None:
    assert Kernel(version=version, backports=backports).stop_machine_rcu_qs is qs


def test_sibling_doorbells_by_version_and_backport() -> None:
    assert commit_behaviour("5b06d1679f2f") == "sibling_doorbells"
    assert not Kernel(version="5.8").sibling_doorbells and Kernel(version="5.9").sibling_doorbells
    assert Kernel(version="5.4", backports=("5b06d1679f2f",)).sibling_doorbells
    # 107c55005fbd (KVM guest doorbell restrictions) does not concern a PowerVM partition
    with pytest.raises(VersionError, match="unknown commit '107c55005fbd'"):
        commit_behaviour("107c55005fbd")


def test_rcu_stall_irq_work_from_v4_15() -> None:
    assert not Kernel(version="4.14").rcu_stall_irq_work and Kernel(version="4.15").rcu_stall_irq_work
    assert Kernel(version="4.14.336").rcu_stall_irq_work is False  # no id: no stable entry either


@pytest.mark.parametrize(("version", "line"), [("4.14", "\t6-...: (0 ticks"), ("4.15", "\t6-...0: (0 ticks")])
def test_stall_line_flags_by_version(version: str, line: str) -> None:
    """print_cpu_stall_info: %d-%c%c%c before the rcu_iw commit (v4.15), then a fourth flag (0: the
    irq_work queued at the FQS pass after jiffies_resched is pending on a hard-off holdout).  The
    reschedule IPI goes out at the same pass either way (one IPI per holdout)."""
    script = [s(6, 100.5, "irqs_hard_off", INF)]
    over = {"kernel": {"version": version, "nmi_watchdog": 0}, "sim": {"max_time_s": 124}, "script": script}
    r = run_case(merge(BASE, over))
    cpu_lines = [ln for ln in r.lines if "ticks this GP" in ln]
    assert cpu_lines and all(line in ln for ln in cpu_lines), cpu_lines


def test_presets_run_the_2022_kernel() -> None:
    for preset in ("lpm-2022", "default"):
        k = load_scenario(preset=preset, overrides=[]).kernel
        assert (k.distro, k.version, k.has_lpm_factor, k.rtas_ri0) == ("sles15-sp4", "5.14.21", False, True)
    sc = load_scenario(preset="lpm-2022", overrides=[])
    assert sc.kernel.preset == "sles" and sc.kernel.hung_task_timeout_secs == 480


@pytest.mark.parametrize(
    ("settings", "path", "says"),
    [
        (["kernel.version=linux"], "kernel.version", "not a kernel version"),
        (["kernel.version=4.4"], "kernel.version", "before 4.13"),
        (["kernel.version=v5.4"], "kernel.version", "without 'v'"),
        (['kernel.backports=["deadbeef"]'], "kernel.backports", "unknown commit 'deadbeef'"),
        (["kernel.distro=rhel9"], "kernel.distro", ""),
        (["kernel.version=6.6.3", "kernel.wq_panic_on_stall=1"], "kernel.wq_panic_on_stall", "6.6.3"),
    ],
)
def test_bad_versions_exit_2_one_line(settings: list[str], path: str, says: str) -> None:
    args = ["run", "--preset", "small", "--json"]
    for x in settings:
        args += ["--set", x]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and f"{path}:" in err and says in err, err


def test_wq_panic_on_stall_on_a_kernel_that_has_it() -> None:
    sc = load_scenario(preset="small", overrides=["kernel.version=6.12", "kernel.wq_panic_on_stall=2"])
    assert sc.kernel.wq_panic_on_stall == 2


def test_lpm_2022_runs_into_the_2022_crash_and_round_trips() -> None:
    """The seed discussion's setting on its own kernel (SLES 15 SP4, no factor, RTAS entered with
    RI=0): the post-resume RTAS calls on drmgr's CPU trip the SMP checker and its NMI IPI lands in
    RTAS: ``Oops: Unrecoverable System Reset``; the log triages to the same events."""
    from lpmsim.runner import simulate, summarise

    from .test_roundtrip import _check

    st = simulate(load_scenario(preset="lpm-2022", overrides=[], seed=1))
    assert st.kernel is not None
    summary = summarise(st, 0.0)
    assert summary["outcome"] == "crash"
    crash = summary["crash"]
    assert (crash["cause"], crash["cpu"]) == ("unrecoverable_system_reset", 0)
    lines = st.kernel.model.log.lines()
    assert any("Oops: Unrecoverable System Reset, sig: 6 [#1]" in ln for ln in lines)
    _check(summary, lines)


def test_print_tainted_mirrors_panic_c() -> None:
    from lpmsim.kernel.taint import TAINT_DIE, TAINT_SOFTLOCKUP, Taint

    t = Taint(Kernel(version="5.14").taint_positions)
    assert t.print_tainted() == "Not tainted"
    t.add(TAINT_SOFTLOCKUP)
    assert t.print_tainted() == "Tainted: G             L   "  # 18 positions: P..T
    t.add(TAINT_DIE)
    assert t.print_tainted() == "Tainted: G      D      L   "
    t19 = Taint(Kernel(version="6.0").taint_positions)
    t19.add(TAINT_SOFTLOCKUP)
    assert t19.print_tainted() == "Tainted: G             L    "  # + TAINT_TEST ('N')
    assert Kernel(distro="sles15-sp4").taint_positions == 20

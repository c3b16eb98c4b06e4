"""Every policy x kernel generation x drmgr phase sequence, on fake roots."""

from __future__ import annotations

import pytest
from guard_fakeroot import FakeRoot

from lpmsim.guard.background import run_restorer
from lpmsim.guard.config import load_config
from lpmsim.guard.paths import Paths
from lpmsim.guard.phases import Guard

GENS = ("pre-v6.0", "v6.0+")

# policy -> generation -> the settings written at pre (fake defaults: watchdog_thresh 10, factor 200)
EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    "none": {"pre-v6.0": {}, "v6.0+": {}},
    "disable-nmi": {g: {"kernel.nmi_watchdog": "0"} for g in GENS},
    "nmi-factor:400": {
        "pre-v6.0": {"kernel.watchdog_thresh": "50"},
        "v6.0+": {"kernel.nmi_wd_lpm_factor": "400"},
    },
    "inhibit-all": {
        g: {
            "kernel.nmi_watchdog": "0",
            "kernel.soft_watchdog": "0",
            "rcupdate.rcu_cpu_stall_suppress": "1",
            "workqueue.watchdog_thresh": "0",
            "kernel.hung_task_timeout_secs": "0",
        }
        for g in GENS
    },
    "none+overrides": {
        g: {"kernel.hung_task_timeout_secs": "600", "rcupdate.rcu_cpu_stall_timeout": "300"} for g in GENS
    },
}


def config_for(policy: str, extra: str = "", top: str = "") -> str:
    completion = '[completion]\nmode = "hold"\nhold_s = 5\nmax_s = 60\n'
    if policy == "none+overrides":
        return (
            f'policy = "none"\n{top}[overrides]\n"kernel.hung_task_timeout_secs" = 600\n'
            f"rcupdate.rcu_cpu_stall_timeout = 300\n{completion}{extra}"
        )
    return f'policy = "{policy}"\n{top}{completion}{extra}'


def changed(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in after.items() if before.get(k) != v}


class FakeTime:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def finish_old_kernel_window(fr: FakeRoot) -> None:
    """Run the detached completion restorer in-process with a fake clock (hold_s = 5)."""
    assert [k for k, _ in fr.spawned] == ["window", "completion"]
    paths = Paths(fr.root)
    t = FakeTime()
    guard = Guard(paths, load_config(paths.default_config, required=True), wall=t)
    assert run_restorer(guard, "completion", fr.spawned[-1][1], clock=t, sleep=t.sleep) == 0
    assert t.now - 1_000_000.0 == pytest.approx(5.0)


@pytest.mark.parametrize("gen", GENS)
@pytest.mark.parametrize("policy", list(EXPECTED))
def test_check_pre_post(fake_root, policy: str, gen: str) -> None:
    fr = fake_root(gen, config_for(policy))
    before = fr.values()
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 0, err
    assert fr.values() == before
    j = fr.journal_data()
    assert j is not None and j["state"] == "recorded"
    assert {e["name"]: e["target"] for e in j["entries"]} == EXPECTED[policy][gen]

    rc, _, err = fr.guard("run-phase", "pre")
    assert rc == 0, err
    assert changed(before, fr.values()) == EXPECTED[policy][gen]
    applied = [line for line in fr.kmsg() if line.startswith("lpmsim-guard: applied policy ")]
    assert len(applied) == len(EXPECTED[policy][gen])
    for name, value in EXPECTED[policy][gen].items():
        pol = policy.split("+")[0]
        line = f"lpmsim-guard: applied policy {pol} (phase pre): {name} {before[name]} -> {value}"
        assert line in fr.kmsg()
    if EXPECTED[policy][gen]:
        assert fr.journal_data()["state"] == "applied"  # type: ignore[index]
        assert fr.spawned[0][0] == "window"
    else:
        assert fr.journal_data() is None and fr.spawned == []

    rc, _out, err = fr.guard("run-phase", "post")
    assert rc == 0, err
    if gen == "pre-v6.0" and EXPECTED[policy][gen]:
        # post comes too early on old kernels: still applied, a restorer waits for completion
        assert changed(before, fr.values()) == EXPECTED[policy][gen]
        assert fr.journal_data()["state"] == "waiting"  # type: ignore[index]
        finish_old_kernel_window(fr)
    assert fr.values() == before
    assert fr.journal_data() is None
    for name, value in EXPECTED[policy][gen].items():
        assert any(
            line.startswith(f"lpmsim-guard: restored {name} {value} -> {before[name]} (phase ")
            for line in fr.kmsg()
        )


@pytest.mark.parametrize("gen", GENS)
@pytest.mark.parametrize("policy", list(EXPECTED))
def test_failed_check_then_undocheck(fake_root, policy: str, gen: str) -> None:
    fr = fake_root(gen, config_for(policy, "[refuse_if]\npanic_set = true\n"))
    fr.set("kernel.hardlockup_panic", "1")
    before = fr.values()
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 1
    assert "kernel.hardlockup_panic = 1" in err
    rc, _, _ = fr.guard("run-phase", "undocheck")
    assert rc == 0
    assert fr.values() == before and fr.journal_data() is None


@pytest.mark.parametrize("gen", GENS)
@pytest.mark.parametrize("policy", list(EXPECTED))
def test_post_without_pre(fake_root, policy: str, gen: str) -> None:
    fr = fake_root(gen, config_for(policy))
    before = fr.values()
    rc, _, _ = fr.guard("run-phase", "post")  # no journal at all
    assert rc == 0
    assert fr.guard("run-phase", "check")[0] == 0
    rc, _, _ = fr.guard("run-phase", "post")  # journal from check only
    assert rc == 0
    assert fr.values() == before and fr.journal_data() is None and fr.spawned == []
    assert "lpmsim-guard: post: nothing applied, nothing to restore (phase post)" in fr.kmsg()


@pytest.mark.parametrize("gen", GENS)
@pytest.mark.parametrize("policy", list(EXPECTED))
def test_killed_between_pre_and_post_same_boot(fake_root, policy: str, gen: str) -> None:
    fr = fake_root(gen, config_for(policy))
    before = fr.values()
    assert fr.guard("run-phase", "check")[0] == 0
    assert fr.guard("run-phase", "pre")[0] == 0
    # the guard (and drmgr) died: no post.  The next migration's check in the same boot restores first.
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 0, err
    assert fr.values() == before
    j = fr.journal_data()
    assert j is not None and j["state"] == "recorded"
    # and records the true originals, not the weakened values
    assert all(e["original"] == before[e["name"]] for e in j["entries"])


@pytest.mark.parametrize("gen", GENS)
@pytest.mark.parametrize("policy", list(EXPECTED))
def test_killed_between_pre_and_post_then_reboot(fake_root, policy: str, gen: str) -> None:
    fr = fake_root(gen, config_for(policy))
    assert fr.guard("run-phase", "check")[0] == 0
    assert fr.guard("run-phase", "pre")[0] == 0
    fr.reboot()
    # after a reboot the kernel starts from its boot values; the admin's boot config differs from the journal
    for name in EXPECTED[policy][gen]:
        fr.set(name, "7")
    after_boot = fr.values()
    rc, _, _ = fr.guard("status")
    assert rc == 0
    rc, _, err = fr.guard("run-phase", "post")
    assert rc == 0, err
    assert fr.values() == after_boot  # nothing "restored" over the new boot's values
    assert fr.journal_data() is None
    if EXPECTED[policy][gen]:
        assert any("discarded journal from an earlier boot" in line for line in fr.kmsg())


def test_manual_restore_and_status(fake_root) -> None:
    fr = fake_root("pre-v6.0", config_for("inhibit-all"))
    before = fr.values()
    fr.guard("run-phase", "check")
    fr.guard("run-phase", "pre")
    rc, out, _ = fr.guard("status")
    assert rc == 0 and "journal: applied, policy inhibit-all" in out and "kernel.soft_watchdog" in out
    rc, out, _ = fr.guard("status", "--json")
    assert rc == 0 and '"state": "applied"' in out
    rc, _, _ = fr.guard("restore")
    assert rc == 0 and fr.values() == before
    assert fr.guard("status")[1].splitlines()[-1] == "nothing applied"


def test_dry_run_changes_nothing(fake_root) -> None:
    fr = fake_root("pre-v6.0", config_for("nmi-factor:200"))
    before = fr.values()
    for phase in ("check", "pre", "post"):
        rc, _out, _ = fr.guard("run-phase", phase, "--dry-run")
        assert rc == 0
    assert fr.values() == before and fr.journal_data() is None
    assert "would apply kernel.watchdog_thresh 10 -> 30" in fr.guard("run-phase", "pre", "--dry-run")[1]


def test_window_watchdog_restores_after_window_max_s(fake_root) -> None:
    fr = fake_root("v6.0+", config_for("disable-nmi", top="window_max_s = 120\n"))
    before = fr.values()
    paths = Paths(fr.root)
    t = FakeTime()
    cfg = load_config(paths.default_config, required=True)
    spawned: list[tuple[str, str]] = []
    g = Guard(paths, cfg, wall=t, spawn=lambda k, tok: spawned.append((k, tok)))
    assert g.run("check") == 0 and g.run("pre") == 0
    assert fr.get("kernel.nmi_watchdog") == "0"
    assert run_restorer(g, "window", spawned[0][1], clock=t, sleep=t.sleep) == 0
    assert t.now - 1_000_000.0 == pytest.approx(120.0)
    assert fr.values() == before
    assert any("window maximum (window_max_s) reached" in line for line in fr.kmsg())


def test_old_kernel_emulation_clamped(fake_root) -> None:
    fr = fake_root("pre-v6.0", config_for("nmi-factor:200"))
    fr.set("kernel.watchdog_thresh", "30")
    rc, out, _ = fr.guard("run-phase", "check")
    assert rc == 0 and "clamped" in out and "90 s" in out
    fr.guard("run-phase", "pre")
    assert fr.get("kernel.watchdog_thresh") == "60"


def test_apply_failure_rolls_back_everything(fake_root) -> None:
    from lpmsim.guard.settings import SettingError, SettingsIO

    class FailOn(SettingsIO):
        def write(self, name: str, value: str) -> None:
            if name == "workqueue.watchdog_thresh" and value == "0":
                raise SettingError(f"{name}: injected EIO")
            super().write(name, value)

    fr = fake_root("v6.0+", config_for("inhibit-all"))
    before = fr.values()
    paths = Paths(fr.root)
    g = Guard(paths, load_config(paths.default_config, required=True), io=FailOn(paths))
    assert g.run("check") == 0
    assert g.run("pre") == 1
    assert fr.values() == before and fr.journal_data() is None
    assert any("rolling back 3 setting(s)" in line for line in fr.kmsg())


def test_failed_rollback_keeps_the_journal_for_a_retry(fake_root) -> None:
    from lpmsim.guard.settings import SettingError, SettingsIO

    class Broken(SettingsIO):
        def write(self, name: str, value: str) -> None:
            if name == "workqueue.watchdog_thresh" or (name == "kernel.nmi_watchdog" and value == "1"):
                raise SettingError(f"{name}: injected EIO")
            super().write(name, value)

    fr = fake_root("v6.0+", config_for("inhibit-all"))
    before = fr.values()
    paths = Paths(fr.root)
    g = Guard(paths, load_config(paths.default_config, required=True), io=Broken(paths))
    assert g.run("pre") == 1
    assert fr.get("kernel.nmi_watchdog") == "0"  # could not be rolled back
    assert fr.journal_data()["state"] == "applying"  # type: ignore[index]
    assert fr.guard("restore")[0] == 0  # the next invocation, with a working kernel, finishes the job
    assert fr.values() == before


def test_kmsg_lines_exactly_as_specified(fake_root) -> None:
    fr = fake_root("pre-v6.0", 'policy = "nmi-factor:200"\n[completion]\nmode = "hold"\nhold_s = 0\n')
    for phase in ("check", "pre", "post"):
        assert fr.guard("run-phase", phase)[0] == 0
    log = fr.kmsg()
    assert "lpmsim-guard: applied policy nmi-factor:200 (phase pre): kernel.watchdog_thresh 10 -> 30" in log
    assert "lpmsim-guard: restored kernel.watchdog_thresh 30 -> 10 (phase post)" in log
    assert all(line.startswith("lpmsim-guard: ") for line in log)

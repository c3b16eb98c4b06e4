"""Unwritable settings, the refuse_if veto, hook mode, install, the CLI, import hygiene, the lock."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from guard_fakeroot import make_root

CONFIG = 'policy = "nmi-factor:200"\n[completion]\nmode = "hold"\nhold_s = 0.3\nmax_s = 5\n'


def test_unwritable_setting_fails_check_and_applies_nothing(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "pre-v6.0", CONFIG)
    fr.path("kernel.watchdog_thresh").chmod(0o444)
    before = fr.values()
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 1
    assert "check failed: kernel.watchdog_thresh: not writable" in err
    assert fr.journal_data() is None
    assert any(line.startswith("lpmsim-guard: check failed, migration vetoed") for line in fr.kmsg())
    rc, _, err = fr.guard("run-phase", "pre")  # drmgr would not run pre, but if it did: nothing applied
    assert rc == 1 and "nothing applied" in err
    assert fr.values() == before and fr.journal_data() is None


def test_missing_setting_and_skip_missing(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", 'policy = "inhibit-all"\n')
    fr.path("workqueue.watchdog_thresh").unlink()  # kernel without CONFIG_WQ_WATCHDOG
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 1 and "workqueue.watchdog_thresh: not present" in err
    fr.config('policy = "inhibit-all"\nskip_missing = true\n')
    rc, out, _ = fr.guard("run-phase", "check")
    assert rc == 0 and "skipping workqueue.watchdog_thresh" in out


def test_not_pseries_vetoes(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", CONFIG, pseries=False)
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 1 and "not a pseries" in err


def test_refuse_if_veto_message_for_the_hmc_operator(tmp_path: Path) -> None:
    cfg = CONFIG + (
        "[refuse_if]\npanic_set = true\n"
        'message = "Migration refused: {settings}. Ask the Linux admin (ext. 4242)."\n'
    )
    fr = make_root(tmp_path, "v6.0+", cfg)
    fr.set("kernel.softlockup_panic", "1")
    fr.set("kernel.panic_on_rcu_stall", "1")
    rc, _out, err = fr.guard("run-phase", "check")
    assert rc == 1
    assert err.strip() == (
        "Migration refused: kernel.softlockup_panic = 1, kernel.panic_on_rcu_stall = 1. "
        "Ask the Linux admin (ext. 4242)."
    )
    assert any(
        line.startswith("lpmsim-guard: refused migration (phase check): Migration refused")
        for line in fr.kmsg()
    )
    fr.set("kernel.softlockup_panic", "0")
    fr.set("kernel.panic_on_rcu_stall", "0")
    assert fr.guard("run-phase", "check")[0] == 0


def test_hook_mode_reads_phase_and_drc_type(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", CONFIG.replace("nmi-factor:200", "disable-nmi"))
    before = fr.values()
    env = {"DRC_TYPE": "pmig", "DRC_COUNT": "0", "ACTION": "migrate"}
    for phase in ("check", "pre"):
        assert fr.guard(env=env | {"PHASE": phase})[0] == 0
    assert fr.get("kernel.nmi_watchdog") == "0"
    assert fr.guard(env=env | {"PHASE": "post"})[0] == 0
    assert fr.values() == before
    assert fr.guard(env={"DRC_TYPE": "cpu", "PHASE": "pre"})[0] == 0  # not a migration: ignored
    assert fr.values() == before and fr.journal_data() is None
    assert fr.guard(env=env | {"PHASE": "bogus"})[0] == 0


def test_hook_as_drmgr_runs_it_cleared_environment(tmp_path: Path) -> None:
    """drmgr execs the hook with clearenv() + DRC_TYPE/DRC_COUNT/ACTION/PHASE, cwd /, stdin /dev/null."""
    fr = make_root(tmp_path, "v6.0+", CONFIG)
    script = Path(sys.executable).parent / "lpmsim-guard"
    assert script.is_file()
    env = {"DRC_TYPE": "pmig", "DRC_COUNT": "0", "ACTION": "migrate", "PHASE": "check"}
    proc = subprocess.run(
        [str(script), "--root", str(fr.root)],
        env=env,
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert fr.journal_data()["state"] == "recorded"  # type: ignore[index]


def test_detached_restorer_process_restores_after_hold(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "pre-v6.0", CONFIG)
    before = fr.values()
    assert fr.guard("run-phase", "check")[0] == 0
    assert fr.guard("run-phase", "pre")[0] == 0
    from lpmsim.guard.hook import run

    rc = run(["run-phase", "post", "--root", str(fr.root)], environ={})  # real detached spawn
    assert rc == 0
    assert fr.get("kernel.watchdog_thresh") == "30"
    deadline = time.monotonic() + 20
    while fr.journal.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fr.values() == before
    assert "lpmsim-guard: restored kernel.watchdog_thresh 30 -> 10 (phase restorer)" in fr.kmsg()


def test_lock_serialises_invocations(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", CONFIG + "")
    fr.config(CONFIG.replace("[completion]", "lock_timeout_s = 0.2\n[completion]"))
    lock = fr.root / "run/lpmsim-guard/lock"
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        rc, _, err = fr.guard("run-phase", "check")
        assert rc == 1 and "another lpmsim-guard holds" in err
    finally:
        os.close(fd)
    assert fr.guard("run-phase", "check")[0] == 0


def test_install_and_uninstall(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+")
    target = Path(sys.executable).parent / "lpmsim-guard"
    rc, _, _ = fr.guard("install", "--target", str(target))
    assert rc == 0
    link = fr.root / "etc/drmgr.d/pmig/lpmsim-guard"
    assert link.is_symlink() and Path(os.readlink(link)) == target.resolve()
    assert (fr.root / "etc/lpmsim/guard.toml").exists()
    assert "hook installed: yes" in fr.guard("status")[1]
    assert fr.guard("install", "--target", str(target))[0] == 0  # idempotent
    fr.guard("run-phase", "check")
    rc, _out, _ = fr.guard("uninstall")
    assert rc == 0 and not link.exists() and not link.is_symlink()


def test_lpmsim_guard_subcommand_is_the_same_implementation(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lpmsim.cli.main import app

    fr = make_root(tmp_path, "v6.0+", CONFIG)
    runner = CliRunner()
    res = runner.invoke(app, ["guard", "status", "--json", "--root", str(fr.root)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["generation"] == "v6.0+"
    res = runner.invoke(app, ["guard", "--help"])
    assert res.exit_code == 0 and "run-phase" in res.stdout
    fr.config('policy = "bogus"\n')
    res = runner.invoke(app, ["guard", "run-phase", "check", "--root", str(fr.root)])
    assert res.exit_code == 2


def test_hook_imports_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "import lpmsim.guard.hook, lpmsim.guard.background, lpmsim.guard.install\n"
        "std = sys.stdlib_module_names\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] not in std and m.split('.')[0] != 'lpmsim'\n"
        "             and not m.startswith(('_', '__editable__')))\n"
        "lp = sorted(m for m in sys.modules if m.startswith('lpmsim') and not m.startswith('lpmsim.guard'))\n"
        "print(bad, lp)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[] ['lpmsim']"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import lpmsim.guard.hook"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    for heavy in ("numpy", "pydantic", "typer", "rich"):
        assert f" {heavy}" not in proc.stderr


def test_broken_config_never_prevents_a_restore(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", CONFIG.replace("nmi-factor:200", "inhibit-all"))
    before = fr.values()
    fr.guard("run-phase", "check")
    fr.guard("run-phase", "pre")
    fr.config('policy = "oops"\n')  # the admin breaks the file mid-migration
    rc, _, err = fr.guard("run-phase", "post")
    assert rc == 0 and "carrying on with built-in defaults" in err
    assert fr.values() == before
    # ...but it does veto the next check, and a DLPAR hook call for another DRC type is left alone
    assert fr.guard("run-phase", "check")[0] == 2
    assert fr.guard(env={"DRC_TYPE": "mem", "PHASE": "check"})[0] == 0


def test_completion_settings_recorded_at_pre_are_used_at_post(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "pre-v6.0", CONFIG)  # hold 0.3 s at pre time
    fr.guard("run-phase", "check")
    fr.guard("run-phase", "pre")
    fr.config(CONFIG.replace("hold_s = 0.3", "hold_s = 0"))  # edited between pre and post
    assert fr.guard("run-phase", "post")[0] == 0
    assert fr.journal_data()["state"] == "waiting"  # type: ignore[index]
    assert fr.journal_data()["completion"]["hold_s"] == 0.3  # type: ignore[index]

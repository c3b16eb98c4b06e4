"""Issue 11 §1: every fault found against ``lpmsim guard``, reproduced on a fake root.

Each test failed on the code before the fix (a traceback, or detectors left disabled after ``post``).
The rule: restoring needs nothing but the journal; an unreadable boot id is the same boot; a reader never
deletes a file a writer may rename; ``post`` that cannot take the lock restores anyway.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from guard_fakeroot import NESTED_TOML, FakeRoot, inject, make_root

from lpmsim.guard.background import run_restorer
from lpmsim.guard.config import GuardConfig
from lpmsim.guard.paths import Paths
from lpmsim.guard.phases import Guard

INHIBIT = 'policy = "inhibit-all"\nlock_timeout_s = 0.3\n[completion]\nmode = "hold"\nhold_s = 0\n'
STEAL = 'policy = "nmi-factor:200"\n[completion]\nmode = "steal"\nsettle_s = 5\nmax_s = 600\npoll_s = 1\n'


def applied(tmp_path: Path, gen: str = "v6.0+", config: str = INHIBIT) -> tuple[FakeRoot, dict[str, str]]:
    fr = make_root(tmp_path, gen, config)
    before = fr.values()
    assert fr.guard("run-phase", "check")[0] == 0
    assert fr.guard("run-phase", "pre")[0] == 0
    assert fr.values() != before
    return fr, before


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lpmsim-guard: ") and "Traceback" not in err
    return lines[0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


# -- a deeply nested guard.toml after pre ------------------------------------------------------------


def test_nested_toml_after_pre_post_restores(tmp_path: Path) -> None:
    fr, before = applied(tmp_path)
    (fr.root / "etc/lpmsim/guard.toml").write_bytes(NESTED_TOML)
    rc, _, err = fr.guard("run-phase", "post")
    assert rc == 0
    assert "nested deeper than 16" in one_line(err) and "carrying on with built-in defaults" in err
    assert fr.values() == before


@pytest.mark.parametrize("command", ["restore", "uninstall"])
def test_nested_toml_after_pre_restore_commands_restore(tmp_path: Path, command: str) -> None:
    fr, before = applied(tmp_path)
    (fr.root / "etc/lpmsim/guard.toml").write_bytes(NESTED_TOML)
    rc, _, err = fr.guard(command)
    assert rc == 0, err
    assert fr.values() == before


def test_nested_toml_status_shows_the_journal(tmp_path: Path) -> None:
    fr, _ = applied(tmp_path)
    (fr.root / "etc/lpmsim/guard.toml").write_bytes(NESTED_TOML)
    rc, out, err = fr.guard("status")
    assert rc == 0
    one_line(err)
    assert "journal: applied, policy inhibit-all" in out


def test_nested_toml_in_the_detached_restorer_process(tmp_path: Path) -> None:
    """The real ``lpmsim-guard _restorer window TOKEN`` process, with the window already expired."""
    fr, before = applied(tmp_path, config="window_max_s = 1\n" + INHIBIT)
    token = fr.spawned[0][1]
    (fr.root / "etc/lpmsim/guard.toml").write_bytes(NESTED_TOML)
    time.sleep(1.1)
    proc = subprocess.run(
        [sys.executable, "-m", "lpmsim.guard.hook", "_restorer", "window", token, "--root", str(fr.root)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("LPMSIM_GUARD_")},
    )
    assert proc.returncode == 0, proc.stderr
    assert "RecursionError" not in proc.stderr and "Traceback" not in proc.stderr
    assert fr.values() == before
    assert any("window maximum (window_max_s) reached" in line for line in fr.kmsg())


def test_nested_toml_at_check_vetoes_with_one_line(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+")
    (fr.root / "etc/lpmsim").mkdir(parents=True)
    (fr.root / "etc/lpmsim/guard.toml").write_bytes(NESTED_TOML)
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 2 and "nested deeper than 16" in one_line(err)
    fr.config("x = 1\n" + "a." * 3000 + "b = 1\n")  # dotted keys nest without brackets
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 2 and "nested deeper than 16" in one_line(err)


# -- boot id unreadable at post ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["remove", "garbage", "empty", "directory", "dangling-symlink"])
def test_unreadable_boot_id_is_the_same_boot(tmp_path: Path, kind: str) -> None:
    import random

    fr, before = applied(tmp_path)
    inject(fr.root / "proc/sys/kernel/random/boot_id", kind, random.Random(1))
    rc, _, err = fr.guard("run-phase", "post")
    assert rc == 0, err
    assert fr.values() == before
    assert not any("earlier boot" in line for line in fr.kmsg())


def test_boot_id_unreadable_at_pre_then_readable_at_post(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", INHIBIT)
    before = fr.values()
    boot_id = fr.root / "proc/sys/kernel/random/boot_id"
    saved = boot_id.read_text()
    boot_id.unlink()
    assert fr.guard("run-phase", "pre")[0] == 0
    assert fr.journal_data()["boot_id"] == "unknown"  # type: ignore[index]
    boot_id.write_text(saved)
    assert fr.guard("run-phase", "post")[0] == 0
    assert fr.values() == before


def test_a_real_reboot_is_still_detected(tmp_path: Path) -> None:
    fr, _ = applied(tmp_path)
    fr.reboot()
    fr.set("kernel.nmi_watchdog", "7")
    assert fr.guard("run-phase", "post")[0] == 0
    assert fr.get("kernel.nmi_watchdog") == "7"  # the new boot's value is not overwritten


# -- the lock ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def lock_held(fr: FakeRoot) -> Iterator[None]:
    lock = fr.root / "run/lpmsim-guard/lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"4242\n")
        yield
    finally:
        os.close(fd)


@pytest.mark.parametrize("gen", ["v6.0+", "pre-v6.0"])
def test_post_that_cannot_take_the_lock_restores_anyway(tmp_path: Path, gen: str) -> None:
    fr, before = applied(tmp_path, gen, INHIBIT.replace("hold_s = 0", "hold_s = 300"))
    with lock_held(fr):
        t0 = time.monotonic()
        rc, _, err = fr.guard("run-phase", "post")
        assert time.monotonic() - t0 < 5
    assert rc == 1
    line = one_line(err)
    assert "another lpmsim-guard (PID 4242) holds" in line and "restoring through the journal" in line
    assert fr.values() == before  # even on pre-v6.0: no hand-over without the lock, restored now
    assert fr.journal_data() is None


def test_restore_command_without_the_lock_restores(tmp_path: Path) -> None:
    fr, before = applied(tmp_path)
    with lock_held(fr):
        rc, _, err = fr.guard("restore")
    assert rc == 1 and "restoring through the journal" in one_line(err)
    assert fr.values() == before


def test_pre_that_cannot_take_the_lock_applies_nothing(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", INHIBIT)
    before = fr.values()
    with lock_held(fr):
        rc, _, err = fr.guard("run-phase", "pre")
    assert rc == 1 and "pre: nothing applied: another lpmsim-guard" in one_line(err)
    assert fr.values() == before


# -- a reader never deletes what a writer may rename ---------------------------------------------------

STATUS_LOOP = """
import contextlib, io, os, sys
from lpmsim.guard.hook import run
root, stop = sys.argv[1], sys.argv[2]
n = 0
while not os.path.exists(stop):
    with contextlib.redirect_stdout(io.StringIO()):
        run(["status", "--root", root], environ={})
        run(["status", "--json", "--root", root], environ={})
    n += 1
print(n)
"""


def test_status_in_a_loop_while_pre_writes_its_journal(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", INHIBIT)
    before = fr.values()
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", STATUS_LOOP, str(fr.root), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for i in range(20):
            rc, _, err = fr.guard("run-phase", "check")
            assert rc == 0, (i, err)
            rc, _, err = fr.guard("run-phase", "pre")
            assert rc == 0, (i, err)
            assert fr.journal_data()["state"] == "applied", i  # type: ignore[index]
            rc, _, err = fr.guard("run-phase", "post")
            assert rc == 0, (i, err)
            assert fr.values() == before, i
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert "Traceback" not in err
    assert int(out) > 0  # the reader really ran alongside


# -- the run directory ---------------------------------------------------------------------------------


def test_run_dir_not_a_directory(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", INHIBIT)
    before = fr.values()
    (fr.root / "run").mkdir()
    (fr.root / "run/lpmsim-guard").write_text("not a directory\n")
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 1 and "check failed, migration vetoed" in one_line(err) and "not a directory" in err
    rc, _, err = fr.guard("run-phase", "pre")
    assert rc == 1 and "pre: nothing applied" in one_line(err)
    assert fr.values() == before
    rc, _, err = fr.guard("run-phase", "post")
    assert "Traceback" not in err and fr.values() == before


def test_run_dir_replaced_after_pre_post_restores_from_the_second_copy(tmp_path: Path) -> None:
    fr, before = applied(tmp_path)
    shutil.rmtree(fr.root / "run/lpmsim-guard")
    (fr.root / "run/lpmsim-guard").write_text("not a directory\n")
    rc, _, err = fr.guard("run-phase", "post")
    lock, primary = err.splitlines()  # one line per problem
    assert rc == 1 and "restoring through the journal without the lock" in lock
    assert primary.endswith("journal.json: cannot read the journal: Not a directory")
    assert fr.values() == before


@pytest.mark.parametrize("which", ["run/lpmsim-guard/journal.json", "run/lpmsim-guard.journal.json"])
@pytest.mark.parametrize("kind", ["remove", "garbage", "directory", "dangling-symlink", "empty"])
def test_either_journal_copy_lost_after_pre(tmp_path: Path, which: str, kind: str) -> None:
    import random

    fr, before = applied(tmp_path)
    inject(fr.root / which, kind, random.Random(3))
    rc, _, err = fr.guard("run-phase", "post")
    assert rc == 0, err
    assert fr.values() == before


def chattr(path: Path, flag: str) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


@pytest.fixture
def immutable_run_dir(tmp_path: Path) -> Iterator[tuple[FakeRoot, Path]]:
    fr = make_root(tmp_path, "v6.0+", INHIBIT)
    run_dir = fr.root / "run/lpmsim-guard"
    run_dir.mkdir(parents=True)
    (run_dir / "lock").write_text("")
    if not chattr(run_dir, "+i"):
        pytest.skip("chattr +i is not available on this filesystem")
    try:
        yield fr, run_dir
    finally:
        chattr(run_dir, "-i")


def test_immutable_run_dir_applies_nothing(immutable_run_dir: tuple[FakeRoot, Path]) -> None:
    fr, _ = immutable_run_dir
    before = fr.values()
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 1 and "cannot write the journal" in one_line(err) and "Operation not permitted" in err
    rc, _, err = fr.guard("run-phase", "pre")
    assert rc == 1 and "pre: nothing applied: cannot write the journal" in one_line(err)
    assert fr.values() == before


def test_run_dir_made_immutable_after_pre_post_restores(tmp_path: Path) -> None:
    fr, before = applied(tmp_path)
    run_dir = fr.root / "run/lpmsim-guard"
    if not chattr(run_dir, "+i"):
        pytest.skip("chattr +i is not available on this filesystem")
    try:
        rc, _, err = fr.guard("run-phase", "post")
    finally:
        chattr(run_dir, "-i")
    assert rc == 0, err
    assert fr.values() == before


# -- files with garbage --------------------------------------------------------------------------------


def test_binary_osrelease_is_an_unknown_version(tmp_path: Path) -> None:
    fr = make_root(tmp_path, "v6.0+", INHIBIT)
    (fr.root / "proc/sys/kernel/osrelease").write_bytes(b"\xff\xfe\x00\x80garbage")
    rc, out, err = fr.guard("run-phase", "check")
    assert rc == 0, err
    assert "kernel release unreadable" in out and "v6.0+ from the presence of kernel.nmi_wd_lpm_factor" in out
    rc, out, _ = fr.guard("status", "--json")
    assert rc == 0 and '"kernel": "unknown"' in out


def test_garbage_setting_at_post_is_written_back(tmp_path: Path) -> None:
    fr, before = applied(tmp_path)
    fr.path("kernel.soft_watchdog").write_bytes(b"\xff\x00garbage")
    rc, _, err = fr.guard("run-phase", "post")
    assert rc == 0, err
    assert fr.values() == before
    assert "lpmsim-guard: restored kernel.soft_watchdog unreadable -> 1 (phase post)" in fr.kmsg()


def test_a_journal_naming_a_path_outside_the_setting_trees_is_refused(tmp_path: Path) -> None:
    fr, before = applied(tmp_path)
    for path in (fr.journal, fr.root / "run/lpmsim-guard.journal.json"):
        path.write_text(path.read_text().replace('"kernel.nmi_watchdog"', '"kernel./../../etc/passwd"'))
    victim = fr.root / "etc/passwd"
    rc, _, err = fr.guard("run-phase", "post")
    assert rc == 1 and "no copy of the journal can be read" in err
    assert not victim.exists()
    assert fr.values() != before  # the originals are lost with the journal: reported, not guessed


# -- the detached restorer ------------------------------------------------------------------------------


def test_restorer_restores_when_proc_stat_turns_to_garbage(tmp_path: Path) -> None:
    fr, before = applied(tmp_path, "pre-v6.0", STEAL)
    assert fr.guard("run-phase", "post")[0] == 0
    (fr.root / "proc/stat").write_bytes(b"\xff\xfe garbage")
    clock = FakeClock()
    guard = Guard(Paths(fr.root), GuardConfig(), wall=clock)
    assert run_restorer(guard, "completion", fr.spawned[-1][1], clock=clock, sleep=clock.sleep) == 0
    assert fr.values() == before
    assert any("stolen time can no longer be read" in line for line in fr.kmsg())


def test_restorer_keeps_waiting_when_one_journal_copy_is_garbage(tmp_path: Path) -> None:
    fr, before = applied(tmp_path, "pre-v6.0", STEAL.replace('"steal"', '"hold"\nhold_s = 50'))
    assert fr.guard("run-phase", "post")[0] == 0
    clock = FakeClock()
    guard = Guard(Paths(fr.root), GuardConfig(), wall=clock)
    fr.journal.write_bytes(b"\x00garbage")
    assert run_restorer(guard, "completion", fr.spawned[-1][1], clock=clock, sleep=clock.sleep) == 0
    assert clock.now - 1_000_000.0 == pytest.approx(50.0)
    assert fr.values() == before


# -- configuration values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ('"a.b.c" = 1', "a module parameter is named MODULE.PARAMETER"),
        (
            '"kernel.watchdog_thresh" = -1',
            "-1 is outside the kernel's range for kernel.watchdog_thresh: 0..60",
        ),
        ('"kernel.watchdog_thresh" = 61', "0..60"),
        ('"kernel.hung_task_timeout_secs" = 99999999999999999', "0..9223372036854775"),
        ('"kernel.nmi_wd_lpm_factor" = 4294967296', "0..4294967295"),
        ('"workqueue.watchdog_thresh" = -1', "0..18446744073709551"),
        ('"rcupdate.rcu_cpu_stall_timeout" = 2', "3..300"),
        ('"kernel.some_other_knob" = -9223372036854775809', "signed 64-bit"),
        ('"kernel.nmi_watchdog" = 2', "0..1"),
        ('"kernel.x\\n" = 1', "is not a setting name"),
    ],
)
def test_override_names_and_ranges(tmp_path: Path, override: str, expected: str) -> None:
    fr = make_root(tmp_path, "v6.0+", f"[overrides]\n{override}\n")
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 2
    assert expected in one_line(err)


def test_overrides_at_the_kernel_bounds_are_accepted(tmp_path: Path) -> None:
    fr = make_root(
        tmp_path,
        "v6.0+",
        '[overrides]\n"kernel.watchdog_thresh" = 60\n"kernel.hung_task_timeout_secs" = 9223372036854775\n',
    )
    assert fr.guard("run-phase", "check")[0] == 0


@pytest.mark.parametrize(
    "policy", ["nmi-factor:٣٠٠", "nmi-factor:３００", "nmi-factor:3٠0", "nmi-factor:+300"]
)
def test_non_ascii_digits_are_refused(tmp_path: Path, policy: str) -> None:
    fr = make_root(tmp_path, "v6.0+", f'policy = "{policy}"\n')
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 2 and "whole percentage" in one_line(err)


@pytest.mark.parametrize("policy", ["nmi-factor:٣٠٠", "guard:nmi-factor:٣٠٠"])
def test_non_ascii_digits_are_refused_by_the_simulator_too(policy: str) -> None:
    from lpmsim.policies.spec import PolicyError, parse_policy

    with pytest.raises(PolicyError, match="whole percentage"):
        parse_policy(policy)


# -- the last lines of defence -------------------------------------------------------------------------


def test_journal_unwritable_after_the_writes_rolls_back(tmp_path: Path) -> None:
    """The journal cannot be updated to ``applied`` (its copy became a directory mid-pre): roll back."""
    from lpmsim.guard.config import load_config
    from lpmsim.guard.settings import SettingsIO

    fr = make_root(tmp_path, "v6.0+", INHIBIT)
    before = fr.values()
    copy = fr.root / "run/lpmsim-guard.journal.json"

    class BreaksTheJournal(SettingsIO):
        def write(self, name: str, value: str) -> None:
            super().write(name, value)
            if name == "kernel.hung_task_timeout_secs" and value == "0":  # the last write of pre
                copy.unlink()
                copy.mkdir()
                (copy / "x").write_text("")

    paths = Paths(fr.root)
    g = Guard(paths, load_config(paths.default_config, required=True), io=BreaksTheJournal(paths))
    assert g.run("pre") == 1
    assert fr.values() == before
    assert any("apply failed (phase pre): IsADirectoryError" in line for line in fr.kmsg())


def test_an_unexpected_error_restores_from_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in post (simulated) still ends with one line and the originals back."""
    fr, before = applied(tmp_path)

    def broken(self: Guard, held: bool = True) -> int:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(Guard, "post", broken)
    rc, _, err = fr.guard("run-phase", "post")
    assert rc == 1
    assert one_line(err) == "lpmsim-guard: error: unexpected RuntimeError: simulated bug"
    assert fr.values() == before
    assert any(line.endswith("(phase emergency)") for line in fr.kmsg())


def test_check_vetoes_once_when_every_journal_copy_is_unreadable(tmp_path: Path) -> None:
    """The lost journal may have held the originals of an open window: recording the current (maybe
    weakened) values as originals would make them permanent, so the first check after it vetoes."""
    fr, before = applied(tmp_path)
    weakened = fr.values()
    for path in (fr.journal, fr.root / "run/lpmsim-guard.journal.json"):
        path.write_bytes(b"\xff\xfe not a journal")
    rc, _, err = fr.guard("run-phase", "check")
    assert rc == 1 and "no copy is readable" in err and "Traceback" not in err
    assert fr.values() == weakened  # nothing recorded, nothing changed: the admin decides
    assert any("migration vetoed" in line for line in fr.kmsg())
    # The copies are set aside as *.corrupt, so the next check goes on normally.
    assert list(fr.journal.parent.glob("*.corrupt")) or list((fr.root / "run").glob("*.corrupt"))
    assert fr.guard("run-phase", "check")[0] == 0
    assert before != weakened

"""``install`` / ``uninstall``: the hook symlink in ROOT/etc/drmgr.d/pmig/ and a starter configuration.

drmgr runs every regular, user-executable file (symlinks followed) of /etc/drmgr.d/pmig/ in version-sort
order, with a cleared environment (powerpc-utils src/drmgr/common.c ``run_hooks``/``run_one_hook``), so the
link must point at an absolute executable whose ``#!`` line names its interpreter: the console script.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from lpmsim.guard import EXIT_OK, GuardError
from lpmsim.guard.files import why
from lpmsim.guard.paths import Paths
from lpmsim.guard.phases import Guard

STARTER_CONFIG = """\
# lpmsim guard configuration (see docs/guard.md; a full example is examples/guard.toml).
# Choose a policy: "none", "disable-nmi", "nmi-factor:P" or "inhibit-all".
policy = "none"

[completion]   # pre-v6.0 kernels: when to restore after drmgr's post phase
mode = "steal"
settle_s = 30
max_s = 1800
"""


def default_target() -> Path:
    argv0 = Path(sys.argv[0])
    if argv0.name == "lpmsim-guard" and argv0.is_file():
        return argv0.resolve()
    found = shutil.which("lpmsim-guard")
    if found:
        return Path(found).resolve()
    beside = Path(sys.executable).parent / "lpmsim-guard"
    if beside.is_file():
        return beside
    raise GuardError("cannot find the lpmsim-guard executable; pass --target PATH")


def install(paths: Paths, target: str | None, *, dry_run: bool = False) -> int:
    try:
        return _install(paths, target, dry_run=dry_run)
    except OSError as exc:
        raise GuardError(f"install failed: {exc.filename or paths.hook_link}: {why(exc)}") from None


def _install(paths: Paths, target: str | None, *, dry_run: bool) -> int:
    exe = Path(target).resolve() if target else default_target()
    if not exe.is_file() or not os.access(exe, os.X_OK):
        raise GuardError(f"{exe} is not an executable file")
    link = paths.hook_link
    if dry_run:
        print(f"would link {link} -> {exe}")
        return EXIT_OK
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink():
        if Path(os.readlink(link)) == exe:
            print(f"already installed: {link} -> {exe}")
        else:
            link.unlink()
    elif link.exists():
        raise GuardError(f"{link} exists and is not a symlink; remove it first")
    if not link.is_symlink():
        link.symlink_to(exe)
        print(f"installed: {link} -> {exe}")
    if not paths.default_config.exists():
        paths.default_config.parent.mkdir(parents=True, exist_ok=True)
        paths.default_config.write_text(STARTER_CONFIG, encoding="utf-8")
        print(f'wrote {paths.default_config} (policy "none": edit it to choose a policy)')
    return EXIT_OK


def uninstall(paths: Paths, guard: Guard, *, dry_run: bool = False) -> int:
    rc = guard.restore("uninstall")
    link = paths.hook_link
    if dry_run:
        print(f"would remove {link}")
        return rc
    if link.is_symlink():
        try:
            link.unlink()
        except OSError as exc:
            raise GuardError(f"cannot remove {link}: {why(exc)}") from None
        print(f"removed {link}")
    elif link.exists():
        raise GuardError(f"{link} is not a symlink installed by lpmsim guard; left in place")
    else:
        print(f"not installed ({link} absent)")
    return rc

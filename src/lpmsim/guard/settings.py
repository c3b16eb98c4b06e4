"""Read and write kernel settings: sysctls (``/proc/sys``) and module parameters (``/sys/module``).

A setting is named like sysctl(8) does (``kernel.watchdog_thresh`` -> ``/proc/sys/kernel/watchdog_thresh``)
or like the kernel command line names a module parameter (``workqueue.watchdog_thresh`` ->
``/sys/module/workqueue/parameters/watchdog_thresh``).  Names are checked before they become paths
(lower-case ASCII words joined by dots: no ``/``, no ``..``), so neither a configuration nor a journal
can make the guard write outside those two trees.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from lpmsim.guard import faults
from lpmsim.guard.files import read_ascii, why
from lpmsim.guard.paths import Paths

SYSCTL_TOP = frozenset({"abi", "crypto", "debug", "dev", "fs", "kernel", "net", "user", "vm"})
SETTING_NAME = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")
VALUE_TEXT = re.compile(r"[ -~\t]{0,256}")  # what a journal may hold as a value: printable ASCII, short
INT_TEXT = re.compile(r"-?[0-9]{1,40}")  # ASCII digits only: str.isdigit() also takes "٣٠٠"


class SettingError(OSError):
    pass


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a setting name the guard can map to a file, or None."""
    if not SETTING_NAME.fullmatch(name):
        return (
            f"{name!r} is not a setting name (sysctl like kernel.watchdog_thresh or module "
            "parameter like workqueue.watchdog_thresh)"
        )
    parts = name.split(".")
    if parts[0] not in SYSCTL_TOP and len(parts) != 2:
        return (
            f"{name!r}: a module parameter is named MODULE.PARAMETER (one dot); a sysctl starts with "
            f"one of {', '.join(sorted(SYSCTL_TOP))}"
        )
    return None


def setting_path(paths: Paths, name: str) -> Path:
    problem = name_problem(name)
    if problem is not None:
        raise SettingError(problem)
    parts = name.split(".")
    if parts[0] in SYSCTL_TOP:
        return paths.under("/proc/sys/" + "/".join(parts))
    return paths.under(f"/sys/module/{parts[0]}/parameters/{parts[1]}")


class SettingsIO:
    """The one place that touches setting files (tests substitute a failing writer)."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def path(self, name: str) -> Path:
        return setting_path(self.paths, name)

    def exists(self, name: str) -> bool:
        try:
            return self.path(name).is_file()
        except OSError:
            return False

    def read(self, name: str) -> str:
        """The setting's text (stripped); SettingError if it cannot be read or is not ASCII text."""
        try:
            path = self.path(name)
            return read_ascii(path).strip()
        except SettingError:
            raise
        except OSError as exc:
            raise SettingError(f"{name}: cannot read {self.path(name)}: {why(exc)}") from None

    def read_int(self, name: str) -> int | None:
        try:
            first = self.read(name).split()[0]
        except (SettingError, IndexError):
            return None
        return int(first) if INT_TEXT.fullmatch(first) else None

    def problem(self, name: str) -> str | None:
        """Why ``name`` cannot be guarded (missing, unreadable, not writable), or None."""
        try:
            path = self.path(name)
        except SettingError as exc:
            return str(exc)
        try:
            st = path.stat()
        except FileNotFoundError:
            return f"{name}: not present ({path} does not exist)"
        except OSError as exc:
            return f"{name}: cannot stat {path}: {why(exc)}"
        if not stat.S_ISREG(st.st_mode):
            return f"{name}: {path} is not a regular file"
        # procfs/sysfs deny writes to files without a write bit even to root, so test the mode too
        if not st.st_mode & stat.S_IWUSR or not os.access(path, os.W_OK):
            return f"{name}: not writable ({path}, mode {stat.filemode(st.st_mode)})"
        if self.read_int(name) is None:
            return f"{name}: {path} does not hold an integer"
        return None

    def write(self, name: str, value: str) -> None:
        path = self.path(name)
        try:
            # no O_CREAT: a setting that vanished is an error, never a new file; O_NONBLOCK: never hang
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NONBLOCK | os.O_NOCTTY)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise SettingError(f"{name}: {path} is not a regular file")
                os.write(fd, f"{value}\n".encode("ascii"))
            finally:
                os.close(fd)
        except SettingError:
            raise
        except OSError as exc:
            raise SettingError(f"{name}: cannot write {value} to {path}: {why(exc)}") from None
        faults.point(f"setting-written {name}")
        now = self.read(name)
        if now.split()[:1] != value.split()[:1]:
            raise SettingError(f"{name}: wrote {value} but the kernel reports {now}")

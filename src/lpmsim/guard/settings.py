"""Read and write kernel settings: sysctls (``/proc/sys``) and module parameters (``/sys/module``).

A setting is named like sysctl(8) does (``kernel.watchdog_thresh`` -> ``/proc/sys/kernel/watchdog_thresh``)
or like the kernel command line names a module parameter (``workqueue.watchdog_thresh`` ->
``/sys/module/workqueue/parameters/watchdog_thresh``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lpmsim.guard import faults
from lpmsim.guard.paths import Paths

SYSCTL_TOP = frozenset({"abi", "crypto", "debug", "dev", "fs", "kernel", "net", "user", "vm"})


class SettingError(OSError):
    pass


def setting_path(paths: Paths, name: str) -> Path:
    parts = name.split(".")
    if parts[0] in SYSCTL_TOP:
        return paths.under("/proc/sys/" + "/".join(parts))
    if len(parts) != 2:
        raise SettingError(f"{name}: a module parameter is named MODULE.PARAMETER")
    return paths.under(f"/sys/module/{parts[0]}/parameters/{parts[1]}")


class SettingsIO:
    """The one place that touches setting files (tests substitute a failing writer)."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    def path(self, name: str) -> Path:
        return setting_path(self.paths, name)

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def read(self, name: str) -> str:
        try:
            return self.path(name).read_text(encoding="ascii").strip()
        except OSError as exc:
            raise SettingError(f"{name}: cannot read {self.path(name)}: {exc.strerror or exc}") from None

    def read_int(self, name: str) -> int | None:
        try:
            return int(self.read(name).split()[0])
        except (SettingError, ValueError, IndexError):
            return None

    def problem(self, name: str) -> str | None:
        """Why ``name`` cannot be guarded (missing, unreadable, not writable), or None."""
        path = self.path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            return f"{name}: not present ({path} does not exist)"
        except OSError as exc:
            return f"{name}: cannot stat {path}: {exc.strerror}"
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
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, f"{value}\n".encode("ascii"))
            finally:
                os.close(fd)
        except OSError as exc:
            raise SettingError(f"{name}: cannot write {value} to {path}: {exc.strerror or exc}") from None
        faults.point(f"setting-written {name}")
        now = self.read(name)
        if now.split()[:1] != [str(value)]:
            raise SettingError(f"{name}: wrote {value} but the kernel reports {now}")

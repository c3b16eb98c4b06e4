"""Every file the guard touches, under a ``--root`` prefix (``/`` on a real partition)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    root: Path

    def under(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def is_real_root(self) -> bool:
        return self.root.resolve() == Path("/")

    @property
    def default_config(self) -> Path:
        return self.under("/etc/lpmsim/guard.toml")

    @property
    def run_dir(self) -> Path:
        return self.under("/run/lpmsim-guard")

    @property
    def journal(self) -> Path:
        return self.run_dir / "journal.json"

    @property
    def journal_copy(self) -> Path:
        """The journal's second copy, outside ``run_dir`` so that losing the directory loses only one."""
        return self.under("/run/lpmsim-guard.journal.json")

    @property
    def lock(self) -> Path:
        return self.run_dir / "lock"

    @property
    def kmsg(self) -> Path:
        return self.under("/dev/kmsg")

    @property
    def hook_dir(self) -> Path:
        return self.under("/etc/drmgr.d/pmig")

    @property
    def hook_link(self) -> Path:
        return self.hook_dir / "lpmsim-guard"

    @property
    def boot_id(self) -> Path:
        return self.under("/proc/sys/kernel/random/boot_id")

    @property
    def osrelease(self) -> Path:
        return self.under("/proc/sys/kernel/osrelease")

    @property
    def cpuinfo(self) -> Path:
        return self.under("/proc/cpuinfo")

    @property
    def proc_stat(self) -> Path:
        return self.under("/proc/stat")

    @property
    def lparcfg(self) -> Path:
        """``/proc/powerpc/lparcfg`` (``/proc/ppc64/lparcfg`` is the older name of the same file)."""
        new = self.under("/proc/powerpc/lparcfg")
        old = self.under("/proc/ppc64/lparcfg")
        return new if new.exists() or not old.exists() else old

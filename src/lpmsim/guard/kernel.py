"""What kind of machine and kernel this is: pseries or not, kernel release, generation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lpmsim.guard.paths import Paths
from lpmsim.guard.policy import GEN_NEW, GEN_OLD, NMI_WD_LPM_FACTOR
from lpmsim.guard.settings import setting_path


@dataclass(frozen=True)
class KernelInfo:
    release: str
    version: tuple[int, int] | None
    has_factor: bool
    generation: str
    pseries: bool


def parse_version(release: str) -> tuple[int, int] | None:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def is_pseries(paths: Paths) -> bool:
    """``platform : pSeries`` in /proc/cpuinfo (arch/powerpc/kernel/setup-common.c prints ppc_md.name)."""
    try:
        text = paths.cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "platform" and value.strip() == "pSeries":
            return True
    return False


def detect(paths: Paths, forced: str = "auto") -> KernelInfo:
    """v6.0+ when the release is >= 6.0 or ``nmi_wd_lpm_factor`` exists (backported to 5.19.y)."""
    try:
        release = paths.osrelease.read_text(encoding="utf-8").strip()
    except OSError:
        release = "unknown"
    version = parse_version(release)
    has_factor = setting_path(paths, NMI_WD_LPM_FACTOR).is_file()
    if forced != "auto":
        generation = forced
    elif has_factor or (version is not None and version >= (6, 0)):
        generation = GEN_NEW
    else:
        generation = GEN_OLD
    return KernelInfo(release, version, has_factor, generation, is_pseries(paths))


def boot_identity(paths: Paths) -> str:
    """``/proc/sys/kernel/random/boot_id``, or the boot time from /proc/stat when it is unavailable."""
    try:
        return paths.boot_id.read_text(encoding="ascii").strip()
    except OSError:
        pass
    try:
        for line in paths.proc_stat.read_text(encoding="ascii").splitlines():
            if line.startswith("btime "):
                return "btime:" + line.split()[1]
    except OSError:
        pass
    return "unknown"

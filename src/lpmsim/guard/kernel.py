"""What kind of machine and kernel this is: pseries or not, kernel release, generation, boot identity.

Every file here may be unreadable or hold garbage; none of that raises.  An unreadable or malformed
``osrelease`` is an unknown kernel version (the generation then follows from the presence of
``kernel.nmi_wd_lpm_factor`` alone); an unreadable or malformed ``boot_id`` is None, which the journal
logic treats as "same boot" (restoring is safe, discarding a live window is not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lpmsim.guard.files import read_small
from lpmsim.guard.paths import Paths
from lpmsim.guard.policy import GEN_NEW, GEN_OLD, NMI_WD_LPM_FACTOR
from lpmsim.guard.settings import setting_path

UNKNOWN_RELEASE = "unknown"
# drivers/char/random.c: proc_do_uuid formats boot_id with "%pU" (lower-case 8-4-4-4-12)
BOOT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RELEASE = re.compile(r"[0-9A-Za-z._+~-]{1,64}")


@dataclass(frozen=True)
class KernelInfo:
    release: str
    version: tuple[int, int] | None
    has_factor: bool
    generation: str
    pseries: bool


def parse_version(release: str) -> tuple[int, int] | None:
    m = re.match(r"([0-9]{1,4})\.([0-9]{1,4})", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def is_pseries(paths: Paths) -> bool:
    """``platform : pSeries`` in /proc/cpuinfo (arch/powerpc/kernel/setup-common.c prints ppc_md.name)."""
    try:
        text = read_small(paths.cpuinfo, 4 * 1024 * 1024).decode("utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "platform" and value.strip() == "pSeries":
            return True
    return False


def read_release(paths: Paths) -> str:
    """``/proc/sys/kernel/osrelease``, or ``unknown`` when it is unreadable or not a release string."""
    try:
        text = read_small(paths.osrelease, 4096).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return UNKNOWN_RELEASE
    return text if RELEASE.fullmatch(text) else UNKNOWN_RELEASE


def detect(paths: Paths, forced: str = "auto") -> KernelInfo:
    """v6.0+ when the release is >= 6.0 or ``nmi_wd_lpm_factor`` exists (backported to 5.19.y)."""
    release = read_release(paths)
    version = parse_version(release)
    try:
        has_factor = setting_path(paths, NMI_WD_LPM_FACTOR).is_file()
    except OSError:
        has_factor = False
    if forced != "auto":
        generation = forced
    elif has_factor or (version is not None and version >= (6, 0)):
        generation = GEN_NEW
    else:
        generation = GEN_OLD
    return KernelInfo(release, version, has_factor, generation, is_pseries(paths))


def boot_identity(paths: Paths) -> str | None:
    """``/proc/sys/kernel/random/boot_id``, or None when it cannot be read or is not a boot id."""
    try:
        text = read_small(paths.boot_id, 4096).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if BOOT_ID.fullmatch(text) else None


def same_boot(recorded: str, current: str | None) -> bool:
    """False only when both boot ids are known and differ: an unreadable id is never a reboot."""
    return current is None or not BOOT_ID.fullmatch(recorded) or recorded == current

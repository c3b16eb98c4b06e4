"""A fake partition root (``proc`` and ``sys`` only) for ``lpmsim advise --from-partition --root``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

V6_RELEASE = "6.4.0-150600.23.7-default"
OLD_RELEASE = "5.14.21-150400.24.46-default"

SETTINGS = {
    "kernel/watchdog_thresh": 10,
    "kernel/nmi_watchdog": 1,
    "kernel/soft_watchdog": 1,
    "kernel/hung_task_timeout_secs": 480,
    "kernel/hardlockup_panic": 0,
    "kernel/softlockup_panic": 0,
    "kernel/hung_task_panic": 0,
    "kernel/panic_on_rcu_stall": 0,
}
PARAMS = {
    "rcupdate/parameters/rcu_cpu_stall_suppress": 0,
    "rcupdate/parameters/rcu_cpu_stall_timeout": 60,
    "workqueue/parameters/watchdog_thresh": 30,
}


def make_partition(
    base: Path,
    *,
    cpus: int = 8,
    mem_kib: int = 16 * 2**20,
    release: str = OLD_RELEASE,
    factor: int | None = None,
    platform: str = "pSeries",
    settings: Mapping[str, int] | None = None,
) -> Path:
    """A root with ``cpus`` processors, ``mem_kib`` of MemTotal, a release, and the detectors'
    settings (``kernel/nmi_wd_lpm_factor`` only when ``factor`` is given)."""
    root = base / "root"
    values: dict[str, object] = {**SETTINGS, "kernel/osrelease": release, **(settings or {})}
    if factor is not None:
        values["kernel/nmi_wd_lpm_factor"] = factor
    for name, value in values.items():
        p = root / "proc/sys" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"{value}\n")
    for name, value in PARAMS.items():
        p = root / "sys/module" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"{value}\n")
    cpuinfo = "".join(f"processor\t: {i}\ncpu\t\t: POWER10 (architected)\n\n" for i in range(cpus))
    (root / "proc/cpuinfo").write_text(cpuinfo + f"timebase\t: 512000000\nplatform\t: {platform}\n")
    (root / "proc/meminfo").write_text(f"MemTotal:       {mem_kib} kB\nMemFree:        1000 kB\n")
    return root

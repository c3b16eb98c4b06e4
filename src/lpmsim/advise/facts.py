"""The partition's facts: what ``lpmsim advise`` needs to know, given on the command line or read from
``/proc`` and ``/sys`` of the running partition with the readers ``lpmsim guard`` uses.

A fact is one of: vCPUs (Linux CPUs, SMT threads included), memory, the effective rate of the
migration link, the kernel (its release or the simulator's behaviour version), the distribution's
defaults (``upstream`` or ``sles``) and the workload preset.  Read from a partition:

* vCPUs: the ``processor`` lines of ``/proc/cpuinfo`` (the CPUs Linux runs, as ``partition.vcpus``);
* memory: ``MemTotal`` of ``/proc/meminfo`` (what Linux manages: a little less than the partition's
  memory, which is what migrates; the difference is the firmware's and the kernel's reservations);
* pseries or not, the release and whether ``kernel.nmi_wd_lpm_factor`` exists: ``lpmsim.guard.kernel``;
* the live values of the lockup detectors' sysctls and module parameters: ``lpmsim.guard.settings``.

The link rate cannot be read from the partition (the mover service partitions own the link), and a
workload is a judgement: both are assumptions, stated in the advice.  Missing or unusable facts
raise ``FactsError`` with one line saying what to pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from lpmsim.guard.files import read_small
from lpmsim.guard.kernel import UNKNOWN_RELEASE, detect, parse_version
from lpmsim.guard.paths import Paths
from lpmsim.guard.settings import SettingsIO
from lpmsim.kernel.config import Kernel
from lpmsim.kernel.versions import ALIASES, BY_NAME, distro_of_release, parse

# What a release gains when kernel.nmi_wd_lpm_factor exists on a kernel the table says lacks it: the
# factor (118b1366930c, with f5e74e836097 and 7c56a8733d0a), and only it -- 5.19.4 took those three
# without the series' completion wait (882c0d1704cf), and the sysctl proves nothing about the wait.
FACTOR_SERIES = (str(BY_NAME["lpm_factor"].commit),)

MODEL_VERSIONS = tuple(ALIASES)  # the deprecated behaviour names kernel.version still accepts
DISTROS = ("upstream", "sles")
WORKLOADS = ("idle", "oltp", "analytics", "kernel-build", "memory-stress")

# arch/powerpc/kernel/watchdog.c, the SMP hard-lockup detector the model implements, came in v4.13
OLDEST_MODELLED = (4, 13)

# The settings read from a partition: the name ``lpmsim guard`` uses -> the scenario's kernel field.
SETTINGS: dict[str, str] = {
    "kernel.watchdog_thresh": "watchdog_thresh",
    "kernel.nmi_watchdog": "nmi_watchdog",
    "kernel.soft_watchdog": "soft_watchdog",
    "kernel.hardlockup_panic": "hardlockup_panic",
    "kernel.hardlockup_all_cpu_backtrace": "hardlockup_all_cpu_backtrace",
    "kernel.softlockup_panic": "softlockup_panic",
    "kernel.nmi_wd_lpm_factor": "nmi_wd_lpm_factor",
    "kernel.hung_task_timeout_secs": "hung_task_timeout_secs",
    "kernel.hung_task_check_interval_secs": "hung_task_check_interval_secs",
    "kernel.hung_task_panic": "hung_task_panic",
    "kernel.hung_task_warnings": "hung_task_warnings",
    "kernel.panic_on_rcu_stall": "panic_on_rcu_stall",
    "kernel.max_rcu_stall_to_panic": "max_rcu_stall_to_panic",
    "rcupdate.rcu_cpu_stall_timeout": "rcu_cpu_stall_timeout",
    "rcupdate.rcu_cpu_stall_suppress": "rcu_cpu_stall_suppress",
    "workqueue.watchdog_thresh": "wq_watchdog_thresh",
    "workqueue.panic_on_stall": "wq_panic_on_stall",
}
PANIC_SETTINGS = (
    "kernel.hardlockup_panic",
    "kernel.softlockup_panic",
    "kernel.hung_task_panic",
    "kernel.panic_on_rcu_stall",
    "workqueue.panic_on_stall",
)

_RELEASE = re.compile(r"[0-9]{1,4}\.[0-9]{1,4}([.\-+~_][0-9A-Za-z._+~-]*)?")


class FactsError(ValueError):
    """A fact that is missing or cannot be used; the message is one line saying what to pass."""


@dataclass(frozen=True)
class Facts:
    """What advise knows about the partition.  ``settings`` holds live values by their sysctl or
    module-parameter name (read from a partition, or empty: the distribution's defaults)."""

    vcpus: int
    memory_gib: float
    link_gbps: float
    kernel_version: str  # kernel.version: a real version (or a deprecated alias, MODEL_VERSIONS)
    kernel_release: str | None = None
    distro: str = "upstream"
    workload: str = "oltp"
    settings: Mapping[str, int] = field(default_factory=dict)
    source: str = "the command line"
    has_factor: bool | None = None  # kernel.nmi_wd_lpm_factor exists (None: from the version)
    kernel_distro: str | None = None  # kernel.distro (a distribution's kernel: version + backports)
    kernel_backports: tuple[str, ...] = ()  # kernel.backports

    @property
    def kernel(self) -> Kernel:
        """The scenario kernel these facts describe (its version-dependent behaviours)."""
        return Kernel(version=self.kernel_version, distro=self.kernel_distro, backports=self.kernel_backports)

    @property
    def kernel_label(self) -> str:
        """The kernel as given, and as modelled when that says more: ``5.14.21-150400.24.46-default
        (modelled as sles15-sp4 5.14.21)``, ``6.6.3``."""
        modelled = " ".join(x for x in (self.kernel_distro, self.kernel_version) if x)
        if self.kernel_backports:
            modelled += " + " + ", ".join(self.kernel_backports)
        given = self.kernel_release or self.kernel_version
        return given if modelled == given else f"{given} (modelled as {modelled})"

    @property
    def has_lpm_factor(self) -> bool:
        return self.has_factor if self.has_factor is not None else self.kernel.has_lpm_factor

    def setting(self, name: str, default: int) -> int:
        return int(self.settings.get(name, default))

    def kernel_fields(self) -> dict[str, Any]:
        """The scenario's ``kernel`` section for these facts."""
        out: dict[str, Any] = {
            "version": self.kernel_version,
            "distro": self.kernel_distro,
            "backports": list(self.kernel_backports),
            "preset": self.distro,
        }
        for name, value in self.settings.items():
            fld = SETTINGS.get(name)
            if fld is not None and not (fld == "nmi_wd_lpm_factor" and not self.has_lpm_factor):
                out[fld] = value
        return out

    def apply(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` (a raw scenario mapping) with these facts set."""
        out = dict(data)

        def section(name: str) -> dict[str, Any]:
            value = out.get(name)
            out[name] = dict(value) if isinstance(value, Mapping) else {}
            return out[name]

        section("partition").update(vcpus=self.vcpus, memory_gib=self.memory_gib)
        section("platform")["link_gbps"] = self.link_gbps
        section("kernel").update(self.kernel_fields())
        section("workload")["preset"] = self.workload
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "vcpus": self.vcpus,
            "memory_gib": self.memory_gib,
            "link_gbps": self.link_gbps,
            "kernel_version": self.kernel_version,
            "kernel_release": self.kernel_release,
            "kernel_distro": self.kernel_distro,
            "kernel_backports": list(self.kernel_backports),
            "distro": self.distro,
            "workload": self.workload,
            "settings": dict(sorted(self.settings.items())),
            "source": self.source,
        }


class KernelFacts(NamedTuple):
    """``--kernel`` read: the scenario's kernel.version, the release given, distro and backports."""

    version: str
    release: str | None
    distro: str | None
    backports: tuple[str, ...]


def version_of(kernel: str, has_factor: bool = False) -> KernelFacts:
    """``--kernel`` -> the kernel the simulator runs (lpmsim.kernel.versions).

    Accepts a release (``5.14.21-150400.24.46-default``, ``6.6``, ``6.12.0-55.el10``) or a deprecated
    behaviour name (``pre-v6.0``, ``v6.0``, ``v6.6``).  A release's version is its major.minor.sublevel;
    a distribution's release (``-150400.``: SLES 15 SP4) is that distribution's kernel; when
    ``kernel.nmi_wd_lpm_factor`` exists on a kernel the table says lacks it, the LPM series is
    counted as backported (5.19.4 took it, without the completion wait)."""
    text = kernel.strip()
    if text in MODEL_VERSIONS:
        return KernelFacts(text, None, None, ())
    ver = parse_version(text) if _RELEASE.fullmatch(text) else None
    if ver is None:
        raise FactsError(
            f"--kernel {kernel[:60]!r}: unknown kernel version; pass a release such as 5.14.21-150400.24.46-default "
            f"or 6.6, or one of {', '.join(MODEL_VERSIONS)}"
        )
    if ver < OLDEST_MODELLED:
        raise FactsError(
            f"--kernel {text}: kernels before 4.13 have no powerpc SMP hard-lockup detector "
            "(arch/powerpc/kernel/watchdog.c), which the simulator models; pass a release >= 4.13"
        )
    try:
        version = str(parse(text))
    except ValueError:
        version = f"{ver[0]}.{ver[1]}"
    distro = distro_of_release(text)
    backports: tuple[str, ...] = ()
    if has_factor and not Kernel(version=version, distro=distro).has_lpm_factor:
        backports = FACTOR_SERIES
    return KernelFacts(version, text, distro, backports)


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise FactsError(f"{option} {value[:60]!r}: expected one of {', '.join(choices)}")
    return value


def given(
    vcpus: int | None,
    memory_gib: float | None,
    link_gbps: float | None,
    kernel: str | None,
    distro: str | None = None,
    workload: str | None = None,
    base: Facts | None = None,
) -> Facts:
    """Facts from the command line, on top of ``base`` (a scenario's or a partition's facts)."""
    missing = [
        opt
        for opt, value, known in (
            ("--vcpus N", vcpus, base is not None),
            ("--memory-gib GIB", memory_gib, base is not None),
            ("--link-gbps GBPS", link_gbps, base is not None and base.link_gbps > 0),
            ("--kernel RELEASE", kernel, base is not None),
        )
        if value is None and not known
    ]
    if missing:
        raise FactsError(
            f"missing facts: pass {', '.join(missing)} (or --from-partition, a scenario file or --preset NAME)"
        )
    for opt, value in (("--vcpus", vcpus), ("--memory-gib", memory_gib), ("--link-gbps", link_gbps)):
        if value is not None and not value > 0:
            raise FactsError(f"{opt} {value}: must be > 0")
    if base is None:
        assert vcpus is not None and memory_gib is not None and link_gbps is not None and kernel is not None
        kf = version_of(kernel)
        return Facts(
            vcpus,
            float(memory_gib),
            float(link_gbps),
            kf.version,
            kf.release,
            check_choice("--distro", distro or "upstream", DISTROS),
            check_choice("--workload", workload or "oltp", WORKLOADS),
            kernel_distro=kf.distro,
            kernel_backports=kf.backports,
        )
    out = base
    if kernel is not None:
        kf = version_of(kernel, bool(base.has_factor))
        out = replace(
            out,
            kernel_version=kf.version,
            kernel_release=kf.release,
            kernel_distro=kf.distro,
            kernel_backports=kf.backports,
        )
    if vcpus is not None:
        out = replace(out, vcpus=vcpus)
    if memory_gib is not None:
        out = replace(out, memory_gib=float(memory_gib))
    if link_gbps is not None:
        out = replace(out, link_gbps=float(link_gbps))
    if distro is not None:
        out = replace(out, distro=check_choice("--distro", distro, DISTROS))
    if workload is not None:
        out = replace(out, workload=check_choice("--workload", workload, WORKLOADS))
    return out


def from_scenario(data: Mapping[str, Any], raw: Mapping[str, Any] | None = None) -> Facts:
    """The facts a validated scenario (``model_dump``) describes; the settings are the kernel
    fields ``raw`` (the scenario as written) gives explicitly, the others being the distribution's."""
    part, plat, kern, wl = (data.get(k) or {} for k in ("partition", "platform", "kernel", "workload"))
    given_kernel = (raw or {}).get("kernel") or {}
    by_field = {f: n for n, f in SETTINGS.items()}
    settings = {by_field[f]: int(kern[f]) for f in given_kernel if f in by_field and f in kern}
    return Facts(
        int(part["vcpus"]),
        float(part["memory_gib"]),
        float(plat["link_gbps"]),
        str(kern["version"]),
        None,
        str(kern.get("preset", "upstream")),
        str(wl.get("preset", "oltp")),
        settings,
        source="the scenario",
        kernel_distro=kern.get("distro"),
        kernel_backports=tuple(kern.get("backports") or ()),
    )


def _cpuinfo_cpus(paths: Paths) -> int:
    try:
        text = read_small(paths.cpuinfo, 16 * 1024 * 1024).decode("utf-8", errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if line.partition(":")[0].strip() == "processor")


def _memtotal_gib(paths: Paths) -> float | None:
    try:
        text = read_small(paths.under("/proc/meminfo"), 1024 * 1024).decode("ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key.strip() == "MemTotal":
            words = rest.split()
            if words and words[0].isascii() and words[0].isdigit():
                return int(words[0]) / 2**20  # kB -> GiB
    return None


def from_partition(root: Path) -> Facts:
    """The facts ``/proc`` and ``/sys`` under ``root`` give (link rate 0: it cannot be read there).

    Raises FactsError when the partition is not pseries or its CPUs, memory or kernel release cannot
    be read."""
    paths = Paths(root)
    where = "" if paths.is_real_root else f" under {root}"
    info = detect(paths)
    if not info.pseries:
        raise FactsError(
            f"{paths.cpuinfo} does not say 'platform : pSeries': advise models IBM Power (pseries) "
            "partitions migrated with LPM; to advise for one from elsewhere, pass its facts instead of "
            "--from-partition (--vcpus, --memory-gib, --link-gbps, --kernel)"
        )
    vcpus = _cpuinfo_cpus(paths)
    if vcpus == 0:
        raise FactsError(f"no 'processor' line in {paths.cpuinfo}: pass --vcpus N")
    memory = _memtotal_gib(paths)
    if memory is None or memory <= 0:
        raise FactsError(f"no MemTotal in {paths.under('/proc/meminfo')}: pass --memory-gib GIB")
    if info.release == UNKNOWN_RELEASE or info.version is None:
        raise FactsError(
            f"cannot read the kernel release{where} ({paths.osrelease}): pass --kernel RELEASE (e.g. 5.14.21)"
        )
    kf = version_of(info.release, info.has_factor)
    io = SettingsIO(paths)
    settings = {name: v for name in SETTINGS if (v := io.read_int(name)) is not None}
    return Facts(
        vcpus,
        round(memory, 3),
        0.0,
        kf.version,
        kf.release,
        "upstream",  # every setting that matters is read: the distribution's defaults are not needed
        "oltp",
        settings,
        source=f"partition {root}",
        has_factor=info.has_factor,
        kernel_distro=kf.distro,
        kernel_backports=kf.backports,
    )

"""The scenario's ``kernel`` and ``script`` sections (pydantic models).

Every sysctl keeps the kernel's own name and is validated with the kernel's own range (the
ranges below are those of the sysctl tables / module parameters, kernel-facts.md sections 1-9).
``preset`` fills the fields the scenario does not give with the defaults of upstream Linux or of
an enterprise distribution (SUSE ppc64le, kernel-facts.md section 9.2).  ``version`` is a real
kernel version (``"5.14"``, ``"6.0"``, ``"6.6.3"``, ``"5.14.21-150400.24.46-default"``), ``backports``
the commits backported to it and ``distro`` a distribution's kernel (a version plus its backports);
every version-dependent behaviour is derived from the one table in ``lpmsim.kernel.versions`` and read
through the properties of ``Kernel`` (``has_lpm_factor``, ``waits_for_completion``, ``rtas_ri0``,
``rcu_reset``, ``wd_rework``, ``rcu_trailer_ncpus``, ``rcu_trailer_prefixed``, ``wq_has_panic_on_stall``,
``stop_machine_rcu_qs``, ``sibling_doorbells``, ``rcu_stall_irq_work``, ``release``).  The first modelled names ``pre-v6.0``, ``v6.0``, ``v6.6`` are deprecated aliases
(``versions.ALIASES``).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal

from pydantic import Field, field_serializer, field_validator, model_validator

from lpmsim.schema import Section
from lpmsim.schema import doc_field as _f

from . import versions as _v

UINT_MAX = 2**32 - 1

DistroName = Literal["sles15-sp4"]
RcuReset = Literal["rest_of_gp", "timeout", "third_fqs"]
"""What ``rcu_cpu_stall_reset()`` does: ``rest_of_gp`` (``jiffies + ULONG_MAX/2``, before v5.15),
``timeout`` (``jiffies + rcu_jiffies_till_stall_check()``, a80be428fbc1, v5.15), ``third_fqs``
(deferred to the third FQS pass, b96e7a5fa0ba, v6.7 and 6.6.3)."""
ScriptState = Literal["stalled", "irqs_soft_off", "irqs_hard_off", "preempt_off", "rtas_call", "d_state"]


class NmiRi0Prob(Section):
    """Probability that a system reset lands while MSR[RI]=0, per interrupted context.

    ASSUMPTION: no measured figures exist; RI=0 windows are short (interrupt entry/exit, SRR
    save/restore) so the defaults are small, larger where interrupt-entry code dominates
    (irqs-off paths) and in firmware (PAPR lets RTAS clear RI in its critical regions).
    """

    user: float = _f(0.0, "probability", "User mode: never RI=0.", ge=0, le=1)
    kernel: float = _f(0.001, "probability", "Preemptible kernel code. ASSUMPTION.", ge=0, le=1)
    preempt_off: float = _f(0.001, "probability", "Kernel code with preemption off. ASSUMPTION.", ge=0, le=1)
    irqs_soft_off: float = _f(0.01, "probability", "Soft-masked kernel code. ASSUMPTION.", ge=0, le=1)
    irqs_hard_off: float = _f(0.05, "probability", "Hard-disabled low-level code. ASSUMPTION.", ge=0, le=1)
    idle: float = _f(0.0, "probability", "Idle loop (ceded or snoozing). ASSUMPTION.", ge=0, le=1)
    rtas: float = _f(
        0.05,
        "probability",
        "Inside an RTAS call entered with RI=1 (v5.19+): RTAS clears RI in its own critical "
        "regions (PAPR R1-7.2.1-9). ASSUMPTION. Entered with RI=0 (older kernels) it is 1.",
        ge=0,
        le=1,
    )


class RtasCallSpec(Section):
    """One kind of RTAS call made by post_mobility_fixup(), with a heavy-tailed base duration."""

    name: str = _f(..., "-", "RTAS token name, e.g. ibm,update-nodes.")
    count: int = _f(1, "calls", "Calls of this kind after each resume.", ge=0, le=100000)
    median_s: float = _f(..., "s", "Median base duration (lognormal). ASSUMPTION.", ge=0)
    sigma: float = _f(1.5, "-", "Lognormal shape (0 = always the median). ASSUMPTION.", ge=0, le=5)


def _default_rtas() -> tuple[RtasCallSpec, ...]:
    # ASSUMPTION (docs/model/kernel.md): nothing published gives these durations; the seed thread
    # only says such a call "is taking ages" right after resume.  Medians of tens of ms with a
    # heavy lognormal tail; the stalls on missing partition memory come on top (guest model).
    return (
        RtasCallSpec(name="ibm,activate-firmware", count=1, median_s=0.05, sigma=1.5),
        RtasCallSpec(name="ibm,update-nodes", count=2, median_s=0.1, sigma=1.5),
        RtasCallSpec(name="ibm,update-properties", count=8, median_s=0.02, sigma=1.5),
    )


_SLES = {
    "hung_task_timeout_secs": 480,
    "rcu_cpu_stall_timeout": 60,
    "printk_caller": True,
    "hz": 100,
    "preempt": "none",
}
_UPSTREAM: dict[str, Any] = {}


class Kernel(Section):
    """The guest kernel: version, sysctls (kernel names and ranges) and model parameters."""

    preset: Literal["upstream", "sles"] = _f(
        "upstream",
        "-",
        "Defaults for the fields not given: 'upstream' Linux, or 'sles' (SUSE ppc64le config: "
        "hung_task_timeout_secs 480, rcu_cpu_stall_timeout 60, PRINTK_CALLER; kernel-facts 9.2).",
    )
    version: str = _f(
        "6.12",
        "-",
        "Kernel version (5.14, 6.0, 6.6.3, 6.12, or a uname -r release): every version-dependent "
        "behaviour follows the table of lpmsim.kernel.versions.  Deprecated aliases: pre-v6.0 "
        "(= distro sles15-sp4), v6.0 (= 6.0), v6.6 (= 6.6.3).  Unset with a distro: its version.",
    )
    distro: DistroName | None = _f(
        None,
        "-",
        "A distribution's kernel: its version (unless version is given) plus its backports; "
        "sles15-sp4 = 5.14.21 with the powerpc watchdog rework (docs/model/kernel.md).  The sysctl "
        "defaults stay preset's (use preset = 'sles' for SUSE's).",
    )
    backports: tuple[str, ...] = _f(
        (),
        "-",
        "Commit ids (from the version table) backported to this kernel, e.g. b6b1c3ce06ca.",
    )
    watchdog_thresh: int = _f(
        10, "s", "kernel.watchdog_thresh (0 disables the lockup detectors).", ge=0, le=60
    )
    nmi_watchdog: int = _f(1, "0/1", "kernel.nmi_watchdog: the powerpc hard-lockup detector.", ge=0, le=1)
    hardlockup_panic: int = _f(0, "0/1", "kernel.hardlockup_panic.", ge=0, le=1)
    hardlockup_all_cpu_backtrace: int = _f(0, "0/1", "kernel.hardlockup_all_cpu_backtrace.", ge=0, le=1)
    soft_watchdog: int = _f(1, "0/1", "kernel.soft_watchdog: the soft-lockup detector.", ge=0, le=1)
    softlockup_panic: int = _f(0, "0/1", "kernel.softlockup_panic.", ge=0, le=1)
    nmi_wd_lpm_factor: int = _f(
        200,
        "%",
        "kernel.nmi_wd_lpm_factor: % added to the hard-lockup timeout during LPM (v6.0+).",
        ge=0,
        le=UINT_MAX,
    )
    rcu_cpu_stall_timeout: int = _f(
        21, "s", "rcupdate.rcu_cpu_stall_timeout (CONFIG_RCU_CPU_STALL_TIMEOUT).", ge=3, le=300
    )
    rcu_cpu_stall_suppress: int = _f(0, "0/1", "rcupdate.rcu_cpu_stall_suppress.", ge=0, le=1)
    panic_on_rcu_stall: int = _f(0, "0/1", "kernel.panic_on_rcu_stall.", ge=0, le=1)
    max_rcu_stall_to_panic: int = _f(0, "stalls", "kernel.max_rcu_stall_to_panic.", ge=0, le=2**31 - 1)
    hung_task_timeout_secs: int = _f(
        120, "s", "kernel.hung_task_timeout_secs (0 disables).", ge=0, le=(2**63 - 1) // 1000
    )
    hung_task_check_interval_secs: int = _f(
        0, "s", "kernel.hung_task_check_interval_secs (0 = the timeout).", ge=0, le=(2**63 - 1) // 1000
    )
    hung_task_panic: int = _f(0, "0/1", "kernel.hung_task_panic.", ge=0, le=1)
    hung_task_warnings: int = _f(
        10, "reports", "kernel.hung_task_warnings (-1 = unlimited).", ge=-1, le=2**31 - 1
    )
    wq_watchdog_thresh: int = _f(
        30,
        "s",
        "workqueue.watchdog_thresh: the workqueue watchdog period and threshold (0 disables).",
        ge=0,
        le=3600,
    )
    wq_panic_on_stall: int = _f(
        0,
        "stalls",
        "workqueue.panic_on_stall: BUG after this many stall detections (0 = never).",
        ge=0,
        le=UINT_MAX,
    )
    hz: Literal[100, 250, 300, 1000] = _f(100, "Hz", "CONFIG_HZ (pseries defconfig and SUSE: 100).")
    preempt: Literal["none", "voluntary", "full"] = _f(
        "none", "-", "Preemption model: 'full' names RCU rcu_preempt, otherwise rcu_sched."
    )
    printk_caller: bool = _f(False, "-", "CONFIG_PRINTK_CALLER: [T<pid>]/[C<cpu>] after the timestamp.")
    uptime_at_start_s: float = _f(
        0.0,
        "s",
        "Kernel uptime when the simulation starts (offsets printk and timebase stamps).",
        ge=0,
        le=1e8,
    )
    tb_freq_hz: int = _f(
        512_000_000,
        "Hz",
        "Timebase frequency (POWER8/9/10: 512 MHz; kernel reads it from the device tree).",
        gt=0,
    )
    nmi_ri0_prob: NmiRi0Prob = Field(default_factory=NmiRi0Prob, description="RI=0 exposure per context.")
    rtas_runs_with_ri0: bool | None = _f(
        None,
        "-",
        "RTAS entered with MSR[RI]=0 (true before v5.19's b6b1c3ce06ca). Unset: from the version and backports.",
    )
    nmi_ipi_loop_overhead_ns: float = _f(
        100.0,
        "ns",
        "Time one iteration of __smp_send_nmi_ipi's wait loop takes beyond its udelay(1): "
        "nmi_ipi_unlock/nmi_ipi_lock (atomics with full barriers), the pending-mask test and the "
        "overshoot of __delay's timebase poll.  The 1 s NMI IPI timeout (1000000 iterations) lasts "
        "1000000 * (1 us + this). ASSUMPTION: not measured on POWER; ~100 ns for a few sync-ordered "
        "atomics.",
        ge=0,
        le=1e6,
    )
    post_mobility_rtas: tuple[RtasCallSpec, ...] = Field(
        default_factory=_default_rtas,
        description="RTAS calls of post_mobility_fixup(), in order. ASSUMPTION: base durations.",
    )
    rtas_touches_memory: bool = _f(
        True,
        "-",
        "RTAS calls run through the guest model (touching firmware memory that may be missing and "
        "stall); false: a plain hard-disabled section of the base duration (for scripted cases).",
    )
    drmgr_cpu: int = _f(0, "cpu", "CPU running drmgr (the migration request and post_mobility_fixup).", ge=0)
    hprod_us: float = _f(5.0, "µs", "Cost of one H_PROD hcall of the waker. ASSUMPTION.", ge=0)
    tail_s: float = _f(
        20.0,
        "s",
        "Keep simulating this long after the LPM flow ends (factor cleared) and COMPLETED: the SMP "
        "hard-lockup timeout (15 s) plus a heartbeat period.",
        ge=0,
    )
    # -- stop (issue 13 section 4): the soft-lockup clock -------------------------------------------
    softlockup_clock: Literal["timebase", "vtb"] = _f(
        "timebase",
        "-",
        "What running_clock() (the soft-lockup timestamps) counts while a vCPU waits in the hypervisor. "
        "arch/powerpc/kernel/time.c reads the VTB on an LPAR with ISA 2.07S (POWER8+); whether PowerVM's "
        "VTB advances during a demand-fault wait is not public. 'timebase': it does (wall time); 'vtb': "
        "it stops while the vCPU is not dispatched (stalled, and the fluid model's steal share), as "
        "under KVM (88b02cf97bb7). ASSUMPTION (default 'timebase'): the seed discussion's PowerVM "
        "testers saw the post-resume latency trip the soft-lockup detector (kernel-facts 8.2, 8.3).",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            version = data.get("version")
            if isinstance(version, str) and version in _v.ALIASES:
                # deprecated behaviour names (versions.DEPRECATION): the kernel each stood for
                real, distro = _v.ALIASES[version]
                data["version"] = real
                if distro is not None and data.get("distro") is None:
                    data["distro"] = distro
            version = data.get("version")
            if isinstance(version, str) and data.get("distro") is None:
                data["distro"] = _v.distro_of_release(version)  # e.g. 5.14.21-150400.24.46-default
            distro = data.get("distro")
            if isinstance(distro, str) and distro in _v.DISTROS and data.get("version") is None:
                data["version"] = _v.DISTROS[distro].version
            preset = data.get("preset", "upstream")
            table = _SLES if preset == "sles" else _UPSTREAM
            data = {**table, **data}
        return data

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_text(cls, v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool):
            raise ValueError(
                f'write the version as a string ("{v}"): a number loses its trailing zeros (6.10)'
            )
        return v

    @field_validator("version")
    @classmethod
    def _check_version(cls, v: str) -> str:
        text = v.strip()
        if text.startswith("v"):
            raise ValueError(
                f"{text[:40]!r}: give a real version without 'v' (e.g. 5.14, 6.0, 6.6.3) or one of the "
                f"deprecated aliases {', '.join(_v.ALIASES)}"
            )
        try:
            ver = _v.parse(text)
        except _v.VersionError as exc:
            raise ValueError(str(exc)) from None
        if ver < _v.OLDEST:
            raise ValueError(
                f"{text}: kernels before {_v.OLDEST} have no powerpc SMP hard-lockup detector "
                "(arch/powerpc/kernel/watchdog.c), which the model follows"
            )
        return text

    @field_validator("backports")
    @classmethod
    def _check_backports(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for c in v:
            try:
                _v.commit_behaviour(c)
            except _v.VersionError as exc:
                raise ValueError(str(exc)) from None
        return v

    # -- derived ------------------------------------------------------------------------------
    # Version-dependent behaviours.  Each is derived from the kernel version and its backports
    # (lpmsim.kernel.versions.BEHAVIOURS); the detectors read only these properties.
    def has(self, behaviour: str) -> bool:
        """The kernel has ``behaviour`` (a name of ``versions.BEHAVIOURS``)."""
        return behaviour in _behaviours(self.version, self.backports, self.distro)

    @property
    def kernel_version(self) -> _v.KVersion:
        return _v.parse(self.version)

    @property
    def has_lpm_factor(self) -> bool:
        """``kernel.nmi_wd_lpm_factor`` and its use in pseries_migrate_partition (118b1366930c, v6.0)."""
        return self.has("lpm_factor")

    @property
    def waits_for_completion(self) -> bool:
        """``wait_for_vasi_session_completed()`` after resume (882c0d1704cf, v6.0)."""
        return self.has("vasi_completion_wait")

    @property
    def rcu_reset(self) -> RcuReset:
        """``rcu_cpu_stall_reset()`` (kernel/rcu/tree_stall.h): a80be428fbc1 (v5.15), b96e7a5fa0ba
        (v6.7, 6.6.3)."""
        if self.has("rcu_reset_third_fqs"):
            return "third_fqs"
        return "timeout" if self.has("rcu_reset_timeout") else "rest_of_gp"

    @property
    def wd_rework(self) -> bool:
        """powerpc watchdog.c has Nicholas Piggin's Nov 2021 series (v5.17, 76521c4b0291):
        ``wd_try_report``, stuck CPUs marked before the IPIs, IPIs sent outside ``wd_smp_lock``."""
        return self.has("wd_rework")

    @property
    def rcu_trailer_ncpus(self) -> bool:
        """The RCU stall trailer ``(t=... jiffies g=... q=...)`` carries `` ncpus=%d`` (v5.19)."""
        return self.has("rcu_trailer_ncpus")

    @property
    def rcu_trailer_prefixed(self) -> bool:
        """The RCU stall trailer is printed with ``pr_err`` (``rcu: `` prefix), before v6.3 with
        ``pr_cont`` (3ab955de929a "rcu: Align the output of RCU CPU stall warning messages")."""
        return self.has("rcu_trailer_pr_err")

    @property
    def wq_has_panic_on_stall(self) -> bool:
        """``workqueue.panic_on_stall`` exists (about v6.12)."""
        return self.has("wq_panic_on_stall")

    @property
    def release(self) -> str:
        """The ``uname -r`` the kernel's banners print (``CPU: %d PID: %d Comm: %s Not tainted %s``):
        the distribution's release for its own version, else ``major.minor.sublevel``."""
        return _v.release_of(self.version, _v.DISTROS.get(self.distro or ""))

    @property
    def taint_positions(self) -> int:
        """Characters of ``print_tainted()`` after ``Tainted: `` (kernel/panic.c ``taint_flags``)."""
        extra = _v.DISTROS[self.distro].taint_extra if self.distro is not None else 0
        return 18 + (1 if self.has("taint_test") else 0) + extra

    @property
    def sreset_ri0_panics(self) -> bool:
        """A system reset that interrupted MSR[RI]=0 code calls ``nmi_panic(regs, "Unrecoverable
        System Reset")`` (before v5.8); from v5.8 (Nicholas Piggin, "die instead of panic",
        lore 20200508043408.886394-16) it calls ``die()``, which returns for trap 0x100."""
        return not self.has("sreset_ri0_die")

    @property
    def stop_machine_rcu_qs(self) -> bool:
        """``multi_cpu_stop`` reports an RCU quiescent state on every pass of its loop, in
        MULTI_STOP_PREPARE too: ``rcu_momentary_dyntick_idle()`` added by 366237e7b083
        ("stop_machine: Provide RCU quiescent state in multi_cpu_stop()", v5.5), renamed
        ``rcu_momentary_eqs()`` in v6.12, until c861cac950fb ("stop_machine: Fix rcu_momentary_eqs()
        call in multi_cpu_stop()", v6.14; no stable backport found) moved it under ``curstate >
        MULTI_STOP_PREPARE`` (interrupts off)."""
        return self.has("stop_machine_rcu_qs") and not self.has("stop_machine_qs_irqs_off")

    @property
    def sibling_doorbells(self) -> bool:
        """pseries sends IPIs to SMT siblings of the sender's core as ``msgsndp`` doorbells
        (``dbell_or_ic_cause_ipi``) even with XIVE from v5.9 (5b06d1679f2f "powerpc/pseries: Use
        doorbells even if XIVE is available"; 107c55005fbd of the same series keeps XIVE for KVM
        guests only, not PowerVM); before, a POWER9+ partition's XIVE sends every IPI through the
        interrupt controller (ASSUMPTION: the platform is POWER9 or later)."""
        return self.has("sibling_doorbells")

    @property
    def rcu_stall_irq_work(self) -> bool:
        """RCU queues ``rdp->rcu_iw`` on a holdout once per GP (``irq_work_queue_on`` next to
        ``resched_cpu``) and the per-CPU stall line has its fourth flag (``%d-%c%c%c%c``): "rcu:
        Make RCU CPU stall warnings check for irq-disabled CPUs" (v4.15, id UNVERIFIED); before,
        ``%d-%c%c%c`` and only ``resched_cpu()``'s IPI, at the same FQS pass."""
        return self.has("rcu_stall_irq_work")

    @property
    def rtas_ri0(self) -> bool:
        """RTAS entered with MSR[RI]=0 (before b6b1c3ce06ca, v5.19), unless ``rtas_runs_with_ri0``."""
        if self.rtas_runs_with_ri0 is not None:
            return self.rtas_runs_with_ri0
        return not self.has("rtas_ri1")

    @property
    def rcu_name(self) -> str:
        return "rcu_preempt" if self.preempt == "full" else "rcu_sched"


@functools.lru_cache(maxsize=256)
def _behaviours(version: str, backports: tuple[str, ...], distro: str | None) -> frozenset[str]:
    ver = _v.parse(version)
    ports = backports + (_v.DISTROS[distro].backports if distro is not None and distro in _v.DISTROS else ())
    return frozenset(b.name for b in _v.BEHAVIOURS if _v.has(ver, ports, b.name))


class ScriptEntry(Section):
    """A per-CPU override: from ``at_s`` for ``duration_s`` the CPU is in ``state``."""

    cpu: int = _f(..., "cpu", "The vCPU.", ge=0)
    at_s: float = _f(..., "s", "Start, simulated seconds from t=0.", ge=0)
    state: ScriptState = _f(
        ...,
        "-",
        "stalled (in the hypervisor), irqs_soft_off, irqs_hard_off, preempt_off, rtas_call (an "
        "RTAS call of duration_s), d_state (a task on this CPU sleeps uninterruptibly).",
    )
    duration_s: float = _f(..., "s", "Duration; inf = never ends.", gt=0)

    @field_serializer("duration_s")
    def _ser_duration(self, v: float) -> float | str:
        return "inf" if math.isinf(v) else v

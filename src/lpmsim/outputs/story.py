"""The few plain sentences that end ``lpmsim run``'s terminal summary, and one next command.

They explain the run from its own figures, never from text kept per preset: how much memory was
still on the source at resume and how long a demand fault waited; then either the chain that killed
the partition (which CPU found which CPUs stuck, the NMI IPI, the panic), or the detectors that
fired, or, when none did, how close the worst vCPU came to each threshold and why (a vCPU's
blocked time is spread over many short faults, between which it takes its interrupts).

``tell`` reads the run summary (the content of ``summary.json``) through ``RunView``, a typed view
of the fields it needs.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lpmsim.outputs.events import KernelEvent

DETECTOR_NAMES = {
    "hardlockup": "the hard-lockup watchdog",
    "softlockup": "the soft-lockup detector",
    "rcu_stall": "the RCU stall detector",
    "workqueue_lockup": "the workqueue watchdog",
    "hung_task": "the hung-task detector",
}

PANIC_CAUSES = {
    "hardlockup_panic": "kernel.hardlockup_panic = 1 turned the hard-lockup report into a panic",
    "softlockup_panic": "kernel.softlockup_panic = 1 turned the soft-lockup report into a panic",
    "rcu_stall_panic": "kernel.panic_on_rcu_stall = 1 turned the RCU stall into a panic",
    "hung_task_panic": "kernel.hung_task_panic = 1 turned the hung-task report into a panic",
    "workqueue_panic": "workqueue.panic_on_stall turned the workqueue lockup into a panic",
    "unrecoverable_system_reset": "the system reset (NMI) landed while MSR[RI] = 0: an unrecoverable "
    "system reset, and the partition crashed",
    "system_reset_dump": "the late system reset ended in the dump panic ('System Reset'): the partition crashed",
}


@dataclass(frozen=True)
class Report:
    detector: str
    reports: int
    cpus: int
    first_s: float | None


@dataclass(frozen=True)
class RunView:
    """The figures of a run summary that the story uses."""

    name: str
    vcpus: int
    memory_gib: float
    link_gbps: float
    migrating: bool
    resumed: bool
    completed: bool
    precopy_s: float
    postcopy_s: float
    resume_s: float | None
    missing_frac: float | None
    link_busy_frac: float
    fault_p99_s: float
    max_stall_s: float
    max_irqs_off_s: float
    max_spin_s: float
    blocktime_max_s: float
    watchdog_thresh_s: int
    rcu_timeout_s: int
    hung_timeout_s: int
    lpm_factor_pct: int | None
    outcome: str
    crash_cause: str | None
    crash_cpu: int | None
    crash_s: float | None
    reports: tuple[Report, ...]
    events: tuple[KernelEvent, ...]
    nmi_sent: int
    nmi_timed_out: int
    drmgr_cpu: int
    fixup_done_s: float | None
    kernel_version: str
    factor_set_s: float | None
    factor_cleared_s: float | None

    @classmethod
    def from_summary(cls, s: dict[str, Any]) -> RunView:
        sc, m, g = s["scenario"], s["migration"], s.get("guest") or {}
        k = sc["kernel"]
        crash = s.get("crash") or {}
        wd = s.get("watchdogs", {})
        reports = tuple(
            Report(name, int(w["reports"]), len(w["cpus"]), w["first_s"])
            for name, w in wd.items()
            if name != "nmi_ipi"
        )
        events = tuple(KernelEvent.from_json(e) for e in s.get("events", []))
        vasi = m.get("vasi") or {}
        return cls(
            name=sc["name"],
            vcpus=int(sc["partition"]["vcpus"]),
            memory_gib=float(sc["partition"]["memory_gib"]),
            link_gbps=float(sc["platform"]["link_gbps"]),
            migrating=bool(m.get("enabled")),
            resumed=bool(m.get("resumed", False)),
            completed=bool(m.get("completed", False)),
            precopy_s=float(m.get("precopy_s", 0.0)),
            postcopy_s=float(m.get("postcopy_s", 0.0)),
            resume_s=vasi.get("resumed_s"),
            missing_frac=m.get("missing_fraction_at_resume"),
            link_busy_frac=float(m.get("link_busy_frac", 0.0)),
            fault_p99_s=float((m.get("fault_latency_s") or {}).get("p99", 0.0)),
            max_stall_s=float(g.get("max_stall_s", 0.0)),
            max_irqs_off_s=float(g.get("max_irqs_off_s", 0.0)),
            max_spin_s=float(g.get("max_spin_s", 0.0)),
            blocktime_max_s=float((m.get("blocktime_s") or {}).get("per_vcpu_max", 0.0)),
            watchdog_thresh_s=int(k["watchdog_thresh"]),
            rcu_timeout_s=int(k["rcu_cpu_stall_timeout"]),
            hung_timeout_s=int(k["hung_task_timeout_secs"]),
            lpm_factor_pct=_lpm_factor(s),
            outcome=str(s.get("outcome", "survived")),
            crash_cause=crash.get("cause"),
            crash_cpu=crash.get("cpu"),
            crash_s=crash.get("time_s"),
            reports=reports,
            events=events,
            nmi_sent=int((wd.get("nmi_ipi") or {}).get("sent", 0)),
            nmi_timed_out=int((wd.get("nmi_ipi") or {}).get("timed_out", 0)),
            drmgr_cpu=int(k.get("drmgr_cpu", 0)),
            fixup_done_s=(s.get("lpm") or {}).get("fixup_done_s"),
            kernel_version=str(k["version"]),
            factor_set_s=(s.get("lpm") or {}).get("factor_set_s"),
            factor_cleared_s=(s.get("lpm") or {}).get("factor_cleared_s"),
        )

    def hard_threshold_at(self, t: float) -> float:
        """The hard-lockup threshold in force at ``t``: powerpc ``watchdog_calc_timeouts()`` adds
        ``wd_timeout_pct`` percent of ``watchdog_thresh`` (integer arithmetic) while the LPM factor
        is set, so a factor of 200 makes 10 s into 30 s (``kernel/hardlockup.py`` ``calc``)."""
        base = self.watchdog_thresh_s
        if self.lpm_factor_pct is None or self.factor_set_s is None or t < self.factor_set_s:
            return float(base)
        if self.factor_cleared_s is not None and t >= self.factor_cleared_s:
            return float(base)
        return float(base + (self.lpm_factor_pct * base) // 100)

    def smp_timeout_at(self, t: float) -> float:
        """The SMP checker's timeout at ``t``: ``wd_smp_panic_timeout_tb`` = 3/2 of the threshold."""
        return self.hard_threshold_at(t) * 3 / 2

    def after_resume(self, t: float) -> str:
        if self.resume_s is None:
            return f"at t = {t:,.1f} s"
        dt = t - self.resume_s
        return f"{dt:,.1f} s after resume" if dt >= 0 else f"{-dt:,.1f} s before resume"


def _lpm_factor(s: dict[str, Any]) -> int | None:
    """The hard-lockup timeout factor in force during the migration (%), None if none was set."""
    lpm = s.get("lpm") or {}
    if lpm.get("factor_set_s") is None:
        return None
    from lpmsim.policies.spec import PolicyError, parse_policy

    sc = s["scenario"]
    try:
        spec = parse_policy(sc["mitigation"]["policy"], sc["mitigation"].get("options") or {})
    except PolicyError:
        return None
    part = spec.part("nmi-factor")
    if part is not None:
        return part.factor
    if spec.has("kernel") and _kernel_has_factor(sc["kernel"]):
        return int(sc["kernel"]["nmi_wd_lpm_factor"])
    return None


def _kernel_has_factor(kernel: dict[str, Any]) -> bool:
    """The scenario's kernel (its dumped section) has ``nmi_wd_lpm_factor`` (version + backports)."""
    from lpmsim.kernel.config import Kernel

    try:
        return Kernel.model_validate(kernel).has_lpm_factor
    except ValueError:
        return False


def _cpus(cpus: tuple[int, ...]) -> str:
    if len(cpus) == 1:
        return f"CPU {cpus[0]}"
    shown = ", ".join(str(c) for c in cpus[:6])
    return f"CPUs {shown}" + (f" and {len(cpus) - 6} more" if len(cpus) > 6 else "")


def _secs(x: float) -> str:
    return f"{x * 1e3:,.0f} ms" if x < 1 else f"{x:,.1f} s"


@dataclass(frozen=True)
class Story:
    sentences: tuple[str, ...]
    next_command: str
    next_why: str


def _migration_sentence(v: RunView) -> str:
    if not v.migrating:
        return (
            "The partition did not migrate: only the scripted states and injected bugs drove the detectors."
        )
    if not v.resumed:
        return (
            f"The run ended {v.precopy_s:,.0f} s into the pre-copy, before the partition resumed on the "
            "destination, so no page was missing yet."
        )
    miss = v.missing_frac or 0.0
    done = "" if v.completed else " (not complete when the run ended)"
    return (
        f"The partition resumed after {v.precopy_s:,.0f} s of pre-copy with {miss:.1%} of its "
        f"{v.memory_gib:g} GiB still on the source; for the {v.postcopy_s:,.1f} s of post-copy{done} "
        f"the {v.link_gbps:g} Gb/s link was {v.link_busy_frac:.0%} busy and a vCPU touching a missing "
        f"page waited {_secs(v.fault_p99_s)} for it (p99)."
    )


def _crash_sentences(v: RunView) -> list[str]:
    """The chain that ended the run: who found whom stuck, the NMI IPI, the panic."""
    assert v.crash_s is not None
    before = [e for e in v.events if e.time_s <= v.crash_s]
    out: list[str] = []
    smp = next((e for e in before if e.detector == "hardlockup" and e.kind == "smp-detected"), None)
    earlier = []
    for name, label in DETECTOR_NAMES.items():
        first = next(
            (e for e in before if e.detector == name and (smp is None or e.time_s < smp.time_s)), None
        )
        if first is not None:
            earlier.append(
                (first.time_s, f"{label} reported {_cpus(first.cpus)} {v.after_resume(first.time_s)}")
            )
    if smp is not None and earlier:
        out.append("First " + "; ".join(text for _, text in sorted(earlier)) + ".")
    if smp is not None:
        thr = v.smp_timeout_at(smp.time_s)
        raised = (
            ""
            if v.hard_threshold_at(smp.time_s) == v.watchdog_thresh_s
            else f", raised by nmi_wd_lpm_factor = {v.lpm_factor_pct}"
        )
        out.append(
            f"{v.after_resume(smp.time_s).capitalize()}, CPU {smp.by}'s hard-lockup watchdog found "
            f"{_cpus(smp.cpus)} had not touched the watchdog for more than its {thr:g} s timeout (3/2 of the hard-lockup threshold{raised}), "
            f"and sent {'it' if len(smp.cpus) == 1 else 'them'} an NMI IPI (a system reset)."
        )
    taken = sorted({c for e in before if e.detector == "nmi_ipi" and e.kind == "ipi-report" for c in e.cpus})
    if taken:
        out.append(f"{_cpus(tuple(taken))} took the NMI and printed its own Hard LOCKUP report.")
    timeouts = [e for e in before if e.detector == "nmi_ipi" and e.kind == "timeout"]
    if timeouts:
        cpus = tuple(sorted({c for e in timeouts for c in e.cpus}))
        out.append(
            f"{_cpus(cpus)}, stalled in the hypervisor on a demand fault, could not take the NMI "
            "within the 1 s timeout (an NMI IPI is taken only by a vCPU that is dispatched)."
        )
    if (
        v.crash_cpu == v.drmgr_cpu
        and v.resume_s is not None
        and (v.fixup_done_s is None or v.fixup_done_s > v.crash_s)
    ):
        out.append(
            f"CPU {v.crash_cpu} is the CPU running drmgr: it was still inside the post-migration RTAS "
            "calls (post_mobility_fixup had not returned), firmware that runs with interrupts off and "
            "touches memory still on the source."
        )
    first = next((e for e in before if e.detector in DETECTOR_NAMES), None)
    if smp is None and first is not None:
        out.append(
            f"{DETECTOR_NAMES[first.detector].capitalize()} reported {_cpus(first.cpus)} "
            f"{v.after_resume(first.time_s)}."
        )
    cause = PANIC_CAUSES.get(v.crash_cause or "", f"the run ended in {v.crash_cause}")
    out.append(f"Then {cause}, on CPU {v.crash_cpu}, {v.after_resume(v.crash_s)} (outcome: {v.outcome}).")
    return out


def _report_sentence(v: RunView) -> str | None:
    fired = [r for r in v.reports if r.reports > 0]
    if not fired:
        return None
    parts = []
    for r in fired:
        when = "" if r.first_s is None else f", first {v.after_resume(r.first_s)}"
        parts.append(
            f"{DETECTOR_NAMES.get(r.detector, r.detector)} {r.reports:,} time{'s' if r.reports > 1 else ''} "
            f"on {r.cpus:,} CPU{'s' if r.cpus != 1 else ''}{when}"
        )
    return "The detectors fired: " + "; ".join(parts) + "."


def _closeness_sentence(v: RunView) -> str:
    """No detector fired: the nearest miss against its threshold, and why blocked time did not count."""
    hard = float(v.watchdog_thresh_s)
    soft = 2.0 * hard
    during = ""
    if v.lpm_factor_pct is not None:
        during = (
            f" ({hard * v.lpm_factor_pct / 100:g} s while nmi_wd_lpm_factor = {v.lpm_factor_pct} "
            "raised it during the migration)"
        )
    candidates = [
        (
            v.max_irqs_off_s / hard,
            f"an interrupts-off section of {_secs(v.max_irqs_off_s)}",
            "hard-lockup",
            hard,
            during,
        ),
        (
            v.max_stall_s / hard,
            f"a single stall in the hypervisor of {_secs(v.max_stall_s)}",
            "hard-lockup",
            hard,
            during,
        ),
        (v.max_spin_s / soft, f"a spin on a lock of {_secs(v.max_spin_s)}", "soft-lockup", soft, ""),
    ]
    ratio, what, name, thr, note = max(candidates, key=lambda c: c[0])
    s = (
        f"No detector fired. The closest any vCPU came to a threshold was {what}, {ratio:.0%} of the "
        f"{thr:g} s {name} threshold{note}."
    )
    if v.blocktime_max_s > 0:
        s += (
            f" One vCPU was blocked {v.blocktime_max_s:,.1f} s in all, but in faults of at most "
            f"{_secs(v.max_stall_s)}, between which it took its interrupts: no detector sees time spread "
            "over many short faults."
        )
    return s


def _without_policy(args: Sequence[str]) -> list[str]:
    """``args`` less its ``--set mitigation.*`` overrides (a compare variant sets the policy)."""
    out: list[str] = []
    skip = False
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if a in ("--set", "-s") and i + 1 < len(args) and args[i + 1].startswith("mitigation."):
            skip = True
            continue
        out.append(a)
    return out


def _next(v: RunView, source: Sequence[str]) -> tuple[str, str]:
    fired = any(r.reports > 0 for r in v.reports) or v.crash_cause is not None
    if v.crash_cause is not None and v.lpm_factor_pct is None and v.migrating:
        return (
            shlex.join(
                ["lpmsim", "run", *_without_policy(source), "--set", "mitigation.policy=nmi-factor:200"]
            ),
            "the same migration with what Linux merged in v6.0, the hard-lockup timeout raised by "
            "nmi_wd_lpm_factor = 200 until the transfer completes",
        )
    if fired:
        variants = [
            "none=none",
            "f200=nmi-factor:200",
            "inhibit=inhibit-all",
            "df=none,platform.discipline=demand-first",
        ]
        return (
            shlex.join(
                ["lpmsim", "compare", *_without_policy(source), "--runs", "4"]
                + [x for var in variants for x in ("--variant", var)]
            ),
            "does a mitigation or a platform fix keep this partition alive, and what does it hide",
        )
    slower = max(v.link_gbps / 10, 0.1)
    return (
        shlex.join(["lpmsim", "run", *source, "--set", f"platform.link_gbps={slower:g}"]),
        "the same partition on a slower link, where the faults queue longer",
    )


def tell(summary: dict[str, Any], source: Sequence[str] = ()) -> Story:
    """The story of one run; ``source`` is how the user named the scenario: the arguments of
    ``lpmsim run`` (a file or ``--preset X``, ``--set``, ``--seed``)."""
    v = RunView.from_summary(summary)
    out = [_migration_sentence(v)]
    if v.crash_cause is not None and v.crash_s is not None:
        out.extend(_crash_sentences(v))
    else:
        rep = _report_sentence(v)
        out.append(rep if rep is not None else _closeness_sentence(v))
        if rep is not None and v.nmi_timed_out:
            out.append(
                f"{v.nmi_timed_out} NMI IPI(s) went unanswered within 1 s, yet the partition survived."
            )
    cmd, why = _next(v, list(source) or ["--preset", v.name])
    return Story(tuple(out), cmd, why)

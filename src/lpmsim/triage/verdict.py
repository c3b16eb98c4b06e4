"""Per-event verdicts (is this report consistent with post-migration memory latency?) and the crash path.

Each detector report gets points for and against (see docs/triage.md, "Verdict rules"):

* phase: inside the transfer window +2; in the suspend window +1; after completion: +1 when the
  reported stall began before completion (time - duration <= completion), 0 within 60 s of it,
  -2 later; before the suspend -2; after an aborted migration -1;
* CPUs: 3 or more CPUs reported within 60 s (or 200 lines) of each other +1; a lone CPU after completion -1;
* stack: in an ordinary memory access or in RTAS (the post-migration RTAS calls) +1; in a lock routine -1.

Score >= 1: ``consistent``; <= -1: ``inconsistent``; 0 or no migration in the log: ``unknown``.
Panics, oopses and unrecoverable system resets take the verdict of the report that triggered them and
carry the crash path in their reason; ``lpm_phase`` events get verdict ``phase``.
"""

from __future__ import annotations

from lpmsim.triage.events import CRASH_TYPES, DETECTOR_TYPES, Event, Phase, Triage

CLUSTER_S = 60.0
CLUSTER_LINES = 200
AFTER_GRACE_S = 60.0
TRIGGER_LINES = 400
CLUSTER_CAP = 3  # a cluster of 3 or more CPUs counts; larger sizes change nothing

_PANIC_CAUSE = {
    "Hard LOCKUP": "kernel.hardlockup_panic=1 turned the hard-lockup report into a panic",
    "softlockup: hung tasks": "kernel.softlockup_panic=1 turned the soft-lockup report into a panic",
    "RCU Stall": "kernel.panic_on_rcu_stall=1 turned the RCU stall into a panic",
    "hung_task: blocked tasks": "kernel.hung_task_panic=1 turned the hung-task report into a panic",
    "System Reset": (
        "a system reset that was not a pending NMI IPI (arrived after the sender's 1 s timeout, or an "
        "operator/HMC dump request) was handled as a dump request"
    ),
    "Unrecoverable System Reset": "a system reset hit code running with MSR[RI]=0 (unrecoverable)",
    "Fatal exception": "an oops became a panic (panic_on_oops, or the oops hit an interrupt/idle task)",
    "Fatal exception in interrupt": "an oops in interrupt context became a panic",
    "Watchdog detected hard LOCKUP": "kernel.hardlockup_panic=1 (perf NMI detector) panicked",
}


def _fmt_cpus(cpus: list[int] | None) -> str:
    if not cpus:
        return "?"
    if len(cpus) > 6:
        return f"{cpus[0]}..{cpus[-1]} ({len(cpus)} CPUs)"
    return ",".join(str(c) for c in cpus)


def _windows(phases: list[Phase]) -> dict[int, tuple[Phase | None, Phase | None]]:
    """Per migration: its transfer phase and its after_transfer phase."""
    out: dict[int, tuple[Phase | None, Phase | None]] = {}
    for p in phases:
        tr, af = out.get(p.migration, (None, None))
        if p.name == "transfer":
            tr = p
        elif p.name == "after_transfer":
            af = p
        out[p.migration] = (tr, af)
    return out


class _Window:
    """The CPUs of the events inside a sliding window, with their multiplicities."""

    __slots__ = ("counts", "removed")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.removed = 0

    def add(self, cpus: list[int]) -> None:
        for c in cpus:
            self.counts[c] = self.counts.get(c, 0) + 1

    def remove(self, cpus: list[int]) -> None:
        for c in cpus:
            n = self.counts[c] - 1
            if n:
                self.counts[c] = n
            else:
                del self.counts[c]
                self.removed += 1

    def sample(self) -> tuple[int, ...] | None:
        """Up to ``CLUSTER_CAP - 1`` distinct CPUs of the window, or None when it holds more."""
        if len(self.counts) >= CLUSTER_CAP:
            return None
        if self.removed > 64 and self.removed > 4 * len(self.counts):
            self.counts, self.removed = dict(self.counts), 0  # drop the holes deletions left behind
        return tuple(self.counts)


def _sweep(items: list[tuple[float, list[int]]], queries: list[float], radius: float) -> list[tuple[int, ...] | None]:
    """For each query key q (sorted), the CPUs of the items (sorted by key) with |key - q| <= radius.

    Two pointers over both sorted lists: every item enters and leaves the window once, so the cost is
    linear in the number of items, queries and CPUs listed."""
    win = _Window()
    out: list[tuple[int, ...] | None] = []
    lo = hi = 0
    for q in queries:
        while hi < len(items) and items[hi][0] <= q + radius:
            win.add(items[hi][1])
            hi += 1
        while lo < hi and items[lo][0] < q - radius:
            win.remove(items[lo][1])
            lo += 1
        out.append(win.sample())
    return out


def _union_size(parts: list[tuple[int, ...] | None]) -> int:
    seen: set[int] = set()
    for p in parts:
        if p is None:
            return CLUSTER_CAP
        seen.update(p)
    return min(len(seen), CLUSTER_CAP)


def cluster_sizes(detectors: list[Event]) -> dict[int, int]:
    """For each detector report (keyed by ``id``), how many distinct CPUs were reported near it, capped at 3.

    "Near": the same migration and boot, and within ``CLUSTER_S`` of it when both reports carry a printk
    time, else within ``CLUSTER_LINES`` lines (the report itself included). Linear time: one sliding
    window over the timed reports sorted by time and one over the reports in line order."""
    groups: dict[tuple[int | None, int], list[Event]] = {}
    for ev in detectors:
        groups.setdefault((ev.migration, ev.boot), []).append(ev)
    out: dict[int, int] = {}
    for evs in groups.values():
        timed = sorted((e for e in evs if e.time_s is not None), key=lambda e: e.time_s or 0.0)
        untimed = [e for e in evs if e.time_s is None]  # events are in line order
        by_time = [(e.time_s or 0.0, e.cpus or []) for e in timed]
        all_lines = [(float(e.line), e.cpus or []) for e in evs]
        untimed_lines = [(float(e.line), e.cpus or []) for e in untimed]
        # timed report: timed others by time, untimed others by line
        t_near = _sweep(by_time, [e.time_s or 0.0 for e in timed], CLUSTER_S)
        if untimed_lines:
            timed_lines = sorted(float(e.line) for e in timed)
            order = sorted(range(len(timed)), key=lambda i: timed[i].line)
            l_near = _sweep(untimed_lines, timed_lines, CLUSTER_LINES)
            extra: list[tuple[int, ...] | None] = [()] * len(timed)
            for k, i in enumerate(order):
                extra[i] = l_near[k]
        else:
            extra = [()] * len(timed)
        for e, a, b in zip(timed, t_near, extra, strict=True):
            out[id(e)] = _union_size([a, b])
        # untimed report: every other report by line
        u_near = _sweep(all_lines, [float(e.line) for e in untimed], CLUSTER_LINES)
        for e, a in zip(untimed, u_near, strict=True):
            out[id(e)] = _union_size([a])
    return out


def judge_detector(
    ev: Event,
    windows: dict[int, tuple[Phase | None, Phase | None]],
    cluster_size: int,
    has_migration: bool,
) -> None:
    """Set verdict and reason of one detector report (``cluster_size``: from :func:`cluster_sizes`)."""
    why: list[str] = []
    score = 0
    if ev.phase == "transfer":
        score += 2
        tr = windows.get(ev.migration or 0, (None, None))[0]
        if tr is not None and tr.start_s is not None and ev.time_s is not None:
            why.append(f"inside the transfer window ({ev.time_s - tr.start_s:.1f} s after resume)")
        else:
            why.append("inside the transfer window (after resume, before the transfer completed)")
    elif ev.phase == "suspend":
        score += 1
        why.append("in the suspend window (stop_machine, blackout, wake-up)")
    elif ev.phase == "after_transfer":
        af = windows.get(ev.migration or 0, (None, None))[1]
        done = af.start_s if af is not None else None
        if done is not None and ev.time_s is not None:
            began = ev.time_s - (ev.duration_s or 0.0)
            dt = ev.time_s - done
            if ev.duration_s is not None and began <= done + 1.0:
                score += 1
                why.append(
                    f"the {ev.duration_s:g} s stall began before the transfer completed ({dt:.1f} s after it)"
                )
            elif dt <= AFTER_GRACE_S:
                why.append(f"{dt:.1f} s after the transfer completed")
            else:
                score -= 2
                why.append(f"{dt:.0f} s after the transfer completed (outside the window)")
        else:
            score -= 1
            why.append("after the transfer completed")
    elif ev.phase == "before_suspend":
        score -= 2
        why.append("before the suspend (pre-copy does not stall the guest)")
    elif ev.phase == "after_abort":
        score -= 1
        why.append("after an aborted migration (the partition never resumed on the destination)")
    if cluster_size >= CLUSTER_CAP:
        score += 1
        why.append(f"{CLUSTER_CAP} or more CPUs reported within {CLUSTER_S:g} s")
    elif cluster_size <= 1 and ev.phase == "after_transfer":
        score -= 1
        why.append("a single CPU")
    if ev.stack == "memory":
        score += 1
        why.append(f"stack in an ordinary memory access ({ev.stack_fn})")
    elif ev.stack == "rtas":
        score += 1
        why.append(f"stack in RTAS ({ev.stack_fn or 'real-mode NIP'}): a post-migration firmware call")
    elif ev.stack == "lock":
        score -= 1
        why.append(f"stack in a lock routine ({ev.stack_fn})")
    if ev.task is not None and ev.task.startswith("drmgr:"):
        score += 1
        why.append("the task is drmgr (the command that runs the migration)")
    if ev.type == "nmi_backtrace" and ev.variant == "no_response":
        why.append("the CPU did not take the backtrace IPI (interrupts off or stalled in the hypervisor)")
    lpm_hint = ev.stack == "rtas" or (ev.task is not None and ev.task.startswith("drmgr:"))
    if not has_migration and not lpm_hint:
        ev.verdict = "unknown"
        why.insert(0, "no migration in the log (no mobility:, timeout-factor or lpmsim-guard lines)")
    elif not has_migration and score < 1:
        ev.verdict = "unknown"
        why.insert(0, "no migration markers in the log")
    elif score >= 1:
        if not has_migration:
            why.insert(0, "no migration markers in the log, but migration evidence in the report")
        ev.verdict = "consistent"
    elif score <= -1:
        ev.verdict = "inconsistent"
    else:
        ev.verdict = "unknown"
    ev.reason = "; ".join(why) if why else "no phase, CPU or stack evidence"


def _describe(ev: Event) -> str:
    cpus = _fmt_cpus(ev.cpus)
    if ev.type == "hardlockup":
        if ev.variant in ("ppc_other", "ppc_old_other"):
            return f"hard lockup: CPU {ev.detected_by} flagged CPU(s) {cpus} (SMP checker, NMI IPI sent)"
        if ev.variant == "ppc_ipi":
            return f"hard lockup: CPU {cpus} took the watchdog NMI IPI (system reset)"
        return f"hard lockup on CPU {cpus}"
    if ev.type == "softlockup":
        return f"soft lockup on CPU {cpus}"
    if ev.type == "rcu_stall":
        return f"RCU stall ({ev.message}, CPUs {cpus})"
    if ev.type == "hung_task":
        return f"hung task {ev.task}"
    if ev.type == "workqueue_lockup":
        return f"workqueue lockup (CPUs {cpus})"
    if ev.type == "nmi_backtrace":
        return f"NMI backtrace IPI to CPU {cpus}"
    if ev.type == "panic":
        return f'panic "{ev.message}"'
    if ev.type == "unrecoverable_system_reset":
        return "Oops: Unrecoverable System Reset"
    if ev.type == "oops":
        return f'oops "{ev.message}"'
    return ev.type


def crash_path(tri: Triage) -> str | None:
    """If the log ends in a crash, the chain of reports that led there, e.g.
    ``hard lockup ... -> NMI IPI landed in RTAS with MSR[RI]=0 -> Oops: Unrecoverable System Reset -> kdump``."""
    evs = [e for e in tri.events if e.type not in ("lpm_phase", "hv_stall")]
    crash_idx = [i for i, e in enumerate(evs) if e.type in CRASH_TYPES]
    if not crash_idx:
        return None
    last = crash_idx[-1]
    if any(e.type in DETECTOR_TYPES and e.type != "nmi_backtrace" for e in evs[last + 1 :]):
        return None  # the partition carried on after its last crash report
    first = last
    while first > 0 and (
        evs[first - 1].type in CRASH_TYPES
        or (
            evs[first - 1].type == "hardlockup"
            and evs[first - 1].variant in ("ppc_ipi", "ppc_old_self_or_ipi")
        )
    ):
        first -= 1
    while first > 0 and evs[first - 1].type == "nmi_backtrace" and evs[first].line - evs[first - 1].line < 50:
        first -= 1
    chain: list[str] = []
    if first > 0 and evs[first].line - evs[first - 1].line <= TRIGGER_LINES:
        chain.append(_describe(evs[first - 1]))
    seq = evs[first : last + 1]
    seq_rtas = any(x.stack == "rtas" for x in seq)
    prev_hl = any(x.type == "hardlockup" for x in evs[max(0, first - 1) : last + 1])
    for e in seq:
        step = _describe(e)
        if e.type == "unrecoverable_system_reset":
            where = " in an RTAS call" if seq_rtas else ""
            if prev_hl:
                chain.append(f"the watchdog's NMI IPI (H_SIGNAL_SYS_RESET) landed{where} with MSR[RI]=0")
        chain.append(step)
        if e.type == "panic":
            for key, cause in _PANIC_CAUSE.items():
                if e.message.strip().startswith(key):
                    chain.append(f"({cause})")
                    break
    kd = next((ln for ln in tri.kdump_lines if ln > seq[0].line), None)
    if kd is not None:
        chain.append(f"kdump/fadump started (line {kd})")
    return " -> ".join(chain)


def assign(tri: Triage) -> None:
    """Set verdict and reason of every event of ``tri`` and its crash path."""
    has_migration = bool(tri.phases)
    detectors = [e for e in tri.events if e.type in DETECTOR_TYPES]
    windows = _windows(tri.phases)
    sizes = cluster_sizes(detectors)
    for ev in tri.events:
        if ev.type == "lpm_phase":
            ev.verdict = "phase"
        elif ev.type == "hv_stall":
            ev.verdict = "consistent"
            ev.reason = (
                "the kernel attributes the delay to the hypervisor (memory access not dispatched), not to a "
                "lockup: post-migration demand paging"
            )
        elif ev.type in DETECTOR_TYPES:
            judge_detector(ev, windows, sizes.get(id(ev), 0), has_migration)
    tri.crash_path = crash_path(tri)
    last_detector_line = max((e.line for e in detectors if e.type != "nmi_backtrace"), default=0)
    previous: Event | None = None
    for ev in tri.events:
        if ev.type in DETECTOR_TYPES:
            previous = ev
        elif ev.type in CRASH_TYPES:
            trigger = previous if previous is not None and ev.line - previous.line <= TRIGGER_LINES else None
            parts = []
            if trigger is not None:
                ev.verdict = trigger.verdict
                parts.append(f"after the {_describe(trigger)} at line {trigger.line} ({trigger.verdict})")
            else:
                judge_detector(ev, windows, 0, has_migration)
                parts.append(ev.reason)
            if tri.crash_path and ev.line > last_detector_line:
                parts.append(f"crash path: {tri.crash_path}")
            elif ev.type == "panic":
                msg = ev.message.strip()
                for key, cause in _PANIC_CAUSE.items():
                    if msg.startswith(key):
                        parts.append(cause)
                        break
            ev.reason = "; ".join(p for p in parts if p)

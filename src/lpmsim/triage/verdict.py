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

import math
from array import array
from collections.abc import Callable, Iterator, Sequence

from lpmsim.triage.events import CRASH_TYPES, DETECTOR_TYPES, Event, Phase, Triage, Verdict
from lpmsim.triage.store import EventStore

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

    def add(self, cpus: tuple[int, ...]) -> None:
        for c in cpus:
            self.counts[c] = self.counts.get(c, 0) + 1

    def remove(self, cpus: tuple[int, ...]) -> None:
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


def _sweep(
    items: Sequence[int],
    queries: Sequence[int],
    key: Callable[[int], float],
    cpus: Callable[[int], tuple[int, ...]],
    radius: float,
) -> Iterator[tuple[int, tuple[int, ...] | None]]:
    """For each query event (in key order): the CPUs of the item events (in key order) whose key is
    within ``radius`` of its key (see :meth:`_Window.sample`).

    Two pointers over both sorted sequences: every item enters and leaves the window once, so the cost
    is linear in the number of items, queries and listed CPUs."""
    win = _Window()
    lo = hi = 0
    n = len(items)
    for q in queries:
        k = key(q)
        while hi < n and key(items[hi]) <= k + radius:
            win.add(cpus(items[hi]))
            hi += 1
        while lo < hi and key(items[lo]) < k - radius:
            win.remove(cpus(items[lo]))
            lo += 1
        yield q, win.sample()


def _union_size(parts: list[tuple[int, ...] | None]) -> int:
    seen: set[int] = set()
    for p in parts:
        if p is None:
            return CLUSTER_CAP
        seen.update(p)
    return min(len(seen), CLUSTER_CAP)


def _sorted_by(idx: array[int], key: Callable[[int], float]) -> array[int]:
    """``idx`` ordered by ``key`` (kept as is when already in order, the usual case of a log)."""
    prev = -math.inf
    for i in idx:
        k = key(i)
        if k < prev:
            return array("q", sorted(idx, key=key))
        prev = k
    return idx


def cluster_sizes(store: EventStore, detectors: array[int]) -> None:
    """Set ``store.cluster[i]`` for each detector report ``i``: how many distinct CPUs were reported
    near it, capped at 3 (``CLUSTER_CAP``).

    "Near": the same migration and boot, and within ``CLUSTER_S`` of it when both reports carry a printk
    time, else within ``CLUSTER_LINES`` lines (the report itself included). Linear time: a sliding
    window over the timed reports in time order and one over the reports in line order."""
    groups: dict[tuple[int, int], array[int]] = {}
    for i in detectors:
        groups.setdefault((store.migration_of(i), store.boot_of(i)), array("q")).append(i)
    time_of, line_of, cpus = store.time_of, store.line_of, store.cpus_of

    def line_key(i: int) -> float:
        return float(line_of(i))

    for evs in groups.values():
        timed = array("q", (i for i in evs if not math.isnan(time_of(i))))
        untimed = array("q", (i for i in evs if math.isnan(time_of(i))))
        by_time = _sorted_by(timed, time_of)
        parts: dict[int, tuple[int, ...] | None] = {}
        if untimed:  # timed reports also count the untimed ones within CLUSTER_LINES lines
            parts = dict(_sweep(untimed, timed, line_key, cpus, CLUSTER_LINES))
        for i, near in _sweep(by_time, by_time, time_of, cpus, CLUSTER_S):
            store.cluster[i] = _union_size([near, parts.get(i, ())])
        for i, near in _sweep(evs, untimed, line_key, cpus, CLUSTER_LINES):
            store.cluster[i] = _union_size([near])


def judge_detector(
    ev: Event,
    windows: dict[int, tuple[Phase | None, Phase | None]],
    cluster_size: int,
    has_migration: bool,
) -> None:
    """Set verdict and reason of one detector report (``cluster_size``: from :func:`cluster_sizes`)."""
    ev.verdict, ev.reason = judge(ev, windows, cluster_size, has_migration)


def judge(
    ev: Event,
    windows: dict[int, tuple[Phase | None, Phase | None]],
    cluster_size: int,
    has_migration: bool,
) -> tuple[Verdict, str]:
    """Verdict and reason of one detector report; a pure function of the event and its context."""
    verdict: Verdict
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
        verdict = "unknown"
        why.insert(0, "no migration in the log (no mobility:, timeout-factor or lpmsim-guard lines)")
    elif not has_migration and score < 1:
        verdict = "unknown"
        why.insert(0, "no migration markers in the log")
    elif score >= 1:
        if not has_migration:
            why.insert(0, "no migration markers in the log, but migration evidence in the report")
        verdict = "consistent"
    elif score <= -1:
        verdict = "inconsistent"
    else:
        verdict = "unknown"
    return verdict, "; ".join(why) if why else "no phase, CPU or stack evidence"


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


_ASIDE = frozenset({"lpm_phase", "hv_stall"})
_IPI_VARIANTS = ("ppc_ipi", "ppc_old_self_or_ipi")
HV_STALL_REASON = (
    "the kernel attributes the delay to the hypervisor (memory access not dispatched), not to a "
    "lockup: post-migration demand paging"
)


def _skip_aside(store: EventStore, i: int, step: int) -> int:
    """The nearest index from ``i`` (inclusive) in direction ``step`` that is not a phase or hv_stall line."""
    n = len(store)
    while 0 <= i < n and store.type_of(i) in _ASIDE:
        i += step
    return i


def crash_path(tri: Triage) -> str | None:
    """If the log ends in a crash, the chain of reports that led there, e.g.
    ``hard lockup ... -> NMI IPI landed in RTAS with MSR[RI]=0 -> Oops: Unrecoverable System Reset -> kdump``.

    Walks the events by index (phase and hv_stall lines are not part of a chain): the cost is the chain's
    length plus one pass over the events after the last crash report."""
    store = _as_store(tri)
    n = len(store)
    last = n - 1
    while last >= 0 and store.type_of(last) not in CRASH_TYPES:
        last -= 1
    if last < 0:
        return None
    for j in range(last + 1, n):
        t = store.type_of(j)
        if t in DETECTOR_TYPES and t != "nmi_backtrace":
            return None  # the partition carried on after its last crash report
    first = last
    while True:
        p = _skip_aside(store, first - 1, -1)
        if p < 0:
            break
        t = store.type_of(p)
        if not (t in CRASH_TYPES or (t == "hardlockup" and store.event(p, False).variant in _IPI_VARIANTS)):
            break
        first = p
    while True:
        p = _skip_aside(store, first - 1, -1)
        if p < 0 or store.type_of(p) != "nmi_backtrace" or store.line_of(first) - store.line_of(p) >= 50:
            break
        first = p
    chain: list[str] = []
    before = _skip_aside(store, first - 1, -1)
    if before >= 0 and store.line_of(first) - store.line_of(before) <= TRIGGER_LINES:
        chain.append(_describe(store.event(before, False)))
    seq = [store.event(k, False) for k in range(first, last + 1) if store.type_of(k) not in _ASIDE]
    seq_rtas = any(x.stack == "rtas" for x in seq)
    lo = before if before >= 0 else first
    prev_hl = any(store.type_of(k) == "hardlockup" for k in range(lo, last + 1))
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


def _as_store(tri: Triage) -> EventStore:
    if not isinstance(tri.events, EventStore):
        store = EventStore()
        for ev in tri.events:
            store.append(ev)
        tri.events = store
    return tri.events


def assign(tri: Triage) -> None:
    """Set verdict and reason of every event of ``tri`` and its crash path.

    Verdicts are stored in the event store; the reason texts of detector reports and hv_stall lines are
    built when an event is read (:attr:`EventStore.reasoner`), crash reports' reasons are stored."""
    store = _as_store(tri)
    has_migration = bool(tri.phases)
    windows = _windows(tri.phases)
    det = array("q", (i for i in range(len(store)) if store.type_of(i) in DETECTOR_TYPES))
    cluster_sizes(store, det)

    def judge_read(ev: Event, size: int) -> tuple[str, str]:
        if ev.type == "hv_stall":
            return "consistent", HV_STALL_REASON
        if ev.type in DETECTOR_TYPES:
            return judge(ev, windows, size, has_migration)
        return ev.verdict, ""

    for i in range(len(store)):
        t = store.type_of(i)
        if t == "lpm_phase":
            store.set_verdict(i, "phase")
        elif t == "hv_stall":
            store.set_verdict(i, "consistent")
        elif t in DETECTOR_TYPES:
            store.set_verdict(i, None)  # judged when read: EventStore.judge
    store.judge = judge_read
    tri.crash_path = crash_path(tri)
    last_detector_line = 0
    for i in det:
        if store.type_of(i) != "nmi_backtrace":
            last_detector_line = max(last_detector_line, store.line_of(i))
    previous = -1
    for i in range(len(store)):
        t = store.type_of(i)
        if t in DETECTOR_TYPES:
            previous = i
        elif t in CRASH_TYPES:
            ev = store.event(i, False)
            trig = store.event(previous) if previous >= 0 else None
            parts = []
            verdict: Verdict
            if trig is not None and ev.line - trig.line <= TRIGGER_LINES:
                verdict = trig.verdict
                parts.append(f"after the {_describe(trig)} at line {trig.line} ({trig.verdict})")
            else:
                verdict, reason = judge(ev, windows, 0, has_migration)
                parts.append(reason)
            if tri.crash_path and ev.line > last_detector_line:
                parts.append(f"crash path: {tri.crash_path}")
            elif ev.type == "panic":
                msg = ev.message.strip()
                for key, cause in _PANIC_CAUSE.items():
                    if msg.startswith(key):
                        parts.append(cause)
                        break
            store.set_verdict(i, verdict, "; ".join(p for p in parts if p))

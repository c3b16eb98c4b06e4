"""Which reports the injected bugs caused, and which detector reported each bug first, how fast.

The simulator knows the truth the kernel log does not: every kernel event (``KernelModel.report``:
``time_s``, ``detector``, ``kind``, ``cpus``, ``by``, ``line``) gets a ``cause`` — ``bug:<index>``
or ``migration`` (everything else: in a partition that does not migrate, the scripted timelines).

Rules (pure functions of the events, the bug records and the crash):

* a spinning bug (soft/hard spin, deadlock) caused an event of any detector but the hung-task one
  that names one of its CPUs at or after its start; its CPUs run nothing else from then on;
* a d_state bug caused the hung-task reports that name its task (``INFO: task bug/3:30004 ...``);
* a panic or crash has the cause of what triggered it: the last report of the detector whose
  ``*_panic`` sysctl fired (all reports of that scan for hung tasks and workqueues — any of them
  a bug's makes it that bug's), or, for a system reset (unrecoverable, or a late dump request), the
  CPU that took it; a hung-task panic with no report printed (``hung_task_warnings`` used up) is
  the earliest d_state bug's, if one had started;
* ``kind = unstuck`` events get a cause but count neither as a report nor as a detection.

A bug is detected by the first report (of the five detectors) caused by it; if the partition
panicked or crashed because of it before any report, ``detected_by`` is ``panic`` or ``crash``.
A bug that started but was not reported is ``missed`` — also when the partition died first from
something else (``died_first``); one that never started (its time came after the run's end, its
origin never came, or its CPU was taken by an earlier bug) is neither.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lpmsim.kernel.model import DETECTORS

EPS = 1e-9
MIGRATION = "migration"

# crash cause -> detector whose report triggered the panic (kernel/watchdog.c, hung_task.c, ...)
TRIGGER = {
    "hardlockup_panic": "hardlockup",
    "softlockup_panic": "softlockup",
    "rcu_stall_panic": "rcu_stall",
    "hung_task_panic": "hung_task",
    "workqueue_panic": "workqueue_lockup",
}
_HUNG_PID = re.compile(r"INFO: task .*:(\d+) blocked for more than")


@dataclass(frozen=True)
class BugRecord:
    """What the injector knows about one bug after the run."""

    index: int
    kind: str
    cpus: tuple[int, ...]
    pids: tuple[int, ...]
    due_s: float | None
    start_s: float | None

    @property
    def cause(self) -> str:
        return f"bug:{self.index}"

    def started_by(self, t: float) -> bool:
        return self.start_s is not None and self.start_s <= t + EPS


def _hung_pid(ev: Mapping[str, Any]) -> int | None:
    m = _HUNG_PID.search(ev.get("line") or "")
    return int(m.group(1)) if m else None


def _direct_cause(ev: Mapping[str, Any], bugs: Sequence[BugRecord]) -> str:
    """The cause of a non-panic event: the bug it names, else the migration."""
    t = float(ev["time_s"])
    cpus = set(ev["cpus"])
    hung = ev["detector"] == "hung_task"
    pid = _hung_pid(ev) if hung else None
    for b in bugs:
        if not b.started_by(t):
            continue
        if b.kind == "d_state":
            if hung and (pid in b.pids if pid is not None else bool(cpus & set(b.cpus))):
                return b.cause
        elif not hung and cpus & set(b.cpus):
            return b.cause
    return MIGRATION


def _panic_cause(
    i: int,
    events: Sequence[Mapping[str, Any]],
    causes: Sequence[str],
    bugs: Sequence[BugRecord],
    crash: Mapping[str, Any] | None,
) -> str:
    ev = events[i]
    t = float(ev["time_s"])
    reason = None if crash is None else crash.get("cause")
    det = TRIGGER.get(str(reason))
    if det is None:
        # a system reset (or an unknown cause): the CPU that took it
        cpu = crash["cpu"] if crash is not None else (ev["cpus"][0] if ev["cpus"] else None)
        for b in bugs:
            if b.kind != "d_state" and cpu in b.cpus and b.started_by(t):
                return b.cause
        return MIGRATION
    batch = [
        j
        for j in range(len(events))
        if j != i
        and events[j]["detector"] == det
        and events[j]["kind"] != "unstuck"
        and float(events[j]["time_s"]) <= t + EPS
    ]
    if batch:
        last = max(float(events[j]["time_s"]) for j in batch)
        same = [j for j in batch if float(events[j]["time_s"]) >= last - EPS]
        if det not in ("hung_task", "workqueue_lockup"):
            same = same[-1:]
        return next((causes[j] for j in same if causes[j] != MIGRATION), MIGRATION)
    if det == "hung_task":
        started = [b for b in bugs if b.kind == "d_state" and b.started_by(t)]
        if started:
            return min(started, key=lambda b: (b.start_s, b.index)).cause
    return MIGRATION


def classify(
    events: Sequence[Mapping[str, Any]], bugs: Sequence[BugRecord], crash: Mapping[str, Any] | None
) -> list[str]:
    """The cause of each event, in the order given."""
    causes = [MIGRATION if e["detector"] == "panic" else _direct_cause(e, bugs) for e in events]
    for i, e in enumerate(events):
        if e["detector"] == "panic":
            causes[i] = _panic_cause(i, events, causes, bugs, crash)
    return causes


def _is_report(ev: Mapping[str, Any]) -> bool:
    return ev["detector"] in DETECTORS and ev["kind"] != "unstuck"


def report_counts(events: Sequence[Mapping[str, Any]], causes: Sequence[str]) -> dict[str, dict[str, int]]:
    """Reports per detector (``KernelModel.watchdog_summary``'s rule), split by cause."""
    out = {MIGRATION: dict.fromkeys(DETECTORS, 0), "bug": dict.fromkeys(DETECTORS, 0)}
    for ev, cause in zip(events, causes, strict=True):
        if _is_report(ev):
            out[MIGRATION if cause == MIGRATION else "bug"][ev["detector"]] += 1
    return out


def bug_results(
    events: Sequence[Mapping[str, Any]],
    causes: Sequence[str],
    bugs: Sequence[BugRecord],
    crash: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """One entry per bug: its CPUs and times, the first detector that reported it, or missed."""
    order = sorted(range(len(events)), key=lambda j: float(events[j]["time_s"]))
    out: list[dict[str, Any]] = []
    for b in bugs:
        first = next(
            (
                j
                for j in order
                if causes[j] == b.cause and (_is_report(events[j]) or events[j]["detector"] == "panic")
            ),
            None,
        )
        detected_by: str | None = None
        detected_s: float | None = None
        delay_s: float | None = None
        if first is not None and b.start_s is not None:
            ev = events[first]
            detected_by = str(ev["detector"] if ev["detector"] in DETECTORS else ev["kind"])
            detected_s = float(ev["time_s"])
            delay_s = detected_s - b.start_s
        started = b.start_s is not None
        status = "not_started" if not started else ("detected" if detected_by is not None else "missed")
        out.append(
            {
                "index": b.index,
                "kind": b.kind,
                "cpus": list(b.cpus),
                "due_s": b.due_s,
                "start_s": b.start_s,
                "detected_by": detected_by,
                "detected_s": detected_s,
                "delay_s": delay_s,
                "missed": status == "missed",
                "status": status,
                "died_first": status == "missed" and crash is not None,
            }
        )
    return out


def attribute(
    events: Sequence[Mapping[str, Any]], bugs: Sequence[BugRecord], crash: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The summary's ``events`` (each with its ``cause``), ``bugs`` and ``reports`` keys."""
    causes = classify(events, bugs, crash)
    return {
        "events": [{**e, "cause": c} for e, c in zip(events, causes, strict=True)],
        "bugs": bug_results(events, causes, bugs, crash),
        "reports": report_counts(events, causes),
    }

"""Data types of a triage: events, phases, calibration bounds and the whole result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal[
    "hardlockup",
    "softlockup",
    "rcu_stall",
    "workqueue_lockup",
    "hung_task",
    "nmi_backtrace",
    "panic",
    "oops",
    "unrecoverable_system_reset",
    "lpm_phase",
    "hv_stall",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
DETECTOR_TYPES = frozenset(
    {"hardlockup", "softlockup", "rcu_stall", "workqueue_lockup", "hung_task", "nmi_backtrace"}
)
CRASH_TYPES = frozenset({"panic", "oops", "unrecoverable_system_reset"})

PhaseName = Literal["before_suspend", "suspend", "transfer", "after_transfer", "after_abort"]
PHASE_NAMES: tuple[str, ...] = PhaseName.__args__  # type: ignore[attr-defined]

Verdict = Literal["consistent", "inconsistent", "unknown", "phase"]

JSON_EVENT_KEYS = ("type", "line", "time_s", "cpus", "duration_s", "task", "phase", "verdict", "reason")


@dataclass(slots=True)
class Event:
    """One announced event. ``line`` is the 1-based line number of the announcing line."""

    type: EventType
    line: int
    time_s: float | None = None
    cpus: list[int] | None = None
    duration_s: float | None = None
    task: str | None = None
    phase: PhaseName | None = None
    verdict: Verdict = "unknown"
    reason: str = ""
    # details that are not part of the JSON schema
    variant: str = ""
    detected_by: int | None = None
    message: str = ""
    jiffies: int | None = None
    migration: int | None = None
    stack: str = ""  # "lock" | "memory" | "rtas" | ""
    stack_fn: str = ""
    boot: int = 0  # 0 for the first boot in the file, +1 at each restart of the printk clock

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "line": self.line,
            "time_s": self.time_s,
            "cpus": self.cpus,
            "duration_s": self.duration_s,
            "task": self.task,
            "phase": self.phase,
            "verdict": self.verdict,
            "reason": self.reason,
        }


@dataclass
class Phase:
    """A migration phase: from the line that starts it to the line that ends it (inclusive-exclusive)."""

    name: PhaseName
    migration: int
    start_line: int
    start_s: float | None
    end_line: int | None = None
    end_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "migration": self.migration,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "start_line": self.start_line,
            "end_line": self.end_line,
        }


@dataclass
class Bound:
    """A lower bound on a stall implied by one report (``--calibrate``)."""

    line: int
    type: str
    cpus: list[int] | None
    quantity: str
    lower_bound: float
    unit: str
    constrains: str
    basis: str

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "type": self.type,
            "cpus": self.cpus,
            "quantity": self.quantity,
            "lower_bound": self.lower_bound,
            "unit": self.unit,
            "constrains": self.constrains,
            "basis": self.basis,
        }


@dataclass
class Triage:
    """Everything found in one log."""

    source: str
    events: Sequence[Event] = field(default_factory=list)  # an EventStore once scanned
    phases: list[Phase] = field(default_factory=list)
    lines: int = 0
    first_time_s: float | None = None
    last_time_s: float | None = None
    crash_path: str | None = None
    kdump_lines: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"events": [e.to_json() for e in self.events], "phases": [p.to_json() for p in self.phases]}

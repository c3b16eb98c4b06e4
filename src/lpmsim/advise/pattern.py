"""A log's pattern after resume, as ``lpmsim triage --calibrate`` reads it, and when two match.

The pattern of a migration's log (the first migration in it) is, per report type after the
partition resumed on the destination (``mobility: CPU n waking all threads``, the start of the
``transfer`` phase): that it fired, on how many distinct CPUs, how long after resume it first did,
and the largest stall lower bound its reports imply (``lpmsim.triage.calibrate``).  Only the
window the log covers counts: a simulated run is compared over the same number of seconds after
its own resume.

Two patterns match within a relative tolerance ``tol`` when the same types fired and, per type,
the CPU counts differ by at most ``max(1, tol x observed)``, the first times by at most
``max(TIME_FLOOR_S, tol x observed)`` and the largest bounds by at most
``max(BOUND_FLOOR_S, tol x observed)``.  The floors are the resolution of the detectors
themselves: the hard-lockup heartbeat period is 4 s, a soft-lockup report counts whole 2^30 ns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lpmsim.triage.calibrate import bounds
from lpmsim.triage.events import Triage

TYPES = (
    "hardlockup",
    "softlockup",
    "rcu_stall",
    "workqueue_lockup",
    "hung_task",
    "hv_stall",
    "panic",
    "oops",
    "unrecoverable_system_reset",
)
TIME_FLOOR_S = 5.0
BOUND_FLOOR_S = 2.0


class NoResume(ValueError):
    """The log shows no resume on the destination: nothing to fit."""


@dataclass(frozen=True)
class LogPattern:
    """What fired after resume, on how many CPUs, when first and how long a stall it proves."""

    window_s: float  # how long after resume the log goes on
    cpus: Mapping[str, int] = field(default_factory=dict)
    first_s: Mapping[str, float] = field(default_factory=dict)
    bound_s: Mapping[str, float] = field(default_factory=dict)

    @property
    def fired(self) -> frozenset[str]:
        return frozenset(self.first_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "fired": sorted(self.fired),
            "cpus": dict(sorted(self.cpus.items())),
            "first_after_resume_s": dict(sorted(self.first_s.items())),
            "stall_lower_bound_s": dict(sorted(self.bound_s.items())),
        }


def resume_time(tri: Triage) -> float:
    """The printk time of the first migration's resume (the start of its ``transfer`` phase)."""
    for ph in tri.phases:
        if ph.name == "transfer" and ph.migration == 1 and ph.start_s is not None:
            return ph.start_s
    raise NoResume(
        "the log shows no resume on the destination (no 'mobility: CPU n waking all threads' or other "
        "post-resume line with a timestamp): nothing to fit; give a console log of the migration"
    )


def pattern(tri: Triage, window_s: float | None = None) -> LogPattern:
    """The pattern of ``tri`` over ``window_s`` after resume (default: to the log's last timestamp)."""
    t0 = resume_time(tri)
    end = tri.last_time_s if tri.last_time_s is not None else t0
    window = max(0.0, end - t0) if window_s is None else window_s
    limit = t0 + window
    cpus: dict[str, set[int]] = {}
    first: dict[str, float] = {}
    lines: dict[int, str] = {}
    for ev in tri.events:
        if ev.type not in TYPES or ev.time_s is None or ev.migration not in (None, 1):
            continue
        if not t0 <= ev.time_s <= limit:
            continue
        first.setdefault(ev.type, round(ev.time_s - t0, 6))
        cpus.setdefault(ev.type, set()).update(ev.cpus or ())
        lines[ev.line] = ev.type
    best: dict[str, float] = {}
    for b in bounds(tri):
        if b.line in lines and b.type in first:
            best[b.type] = max(best.get(b.type, 0.0), b.lower_bound)
    return LogPattern(window, {k: len(v) for k, v in cpus.items()}, first, best)


def _close(sim: float, obs: float, tol: float, floor: float) -> bool:
    return abs(sim - obs) <= max(floor, tol * abs(obs))


def matches(sim: LogPattern, obs: LogPattern, tol: float) -> bool:
    """``sim`` reproduces ``obs`` within ``tol`` (see the module doc)."""
    if sim.fired != obs.fired:
        return False
    for t in obs.fired:
        if not _close(sim.cpus.get(t, 0), obs.cpus.get(t, 0), tol, 1.0):
            return False
        if not _close(sim.first_s[t], obs.first_s[t], tol, TIME_FLOOR_S):
            return False
        if (
            t in obs.bound_s
            and t in sim.bound_s
            and not _close(sim.bound_s[t], obs.bound_s[t], tol, BOUND_FLOOR_S)
        ):
            return False
        if (t in obs.bound_s) != (t in sim.bound_s):
            return False
    return True

"""The migration timeline: which LPM phase each line of a log falls in.

Phases of one migration (kernel-facts.md section 7):

``before_suspend``  pre-copy: the partition runs on the source (starts at the drmgr hook's ``check``/``pre``
                    line when there is one, else at the start of the log);
``suspend``         from ``watchdog: Set the NMI watchdog timeout factor to N%`` (N > 0, printed once VASI
                    reached Suspending, v6.0+) or ``mobility: calling ibm,suspend-me on CPU n`` to resume;
``transfer``        from ``mobility: CPU n waking all threads`` (resumed on the destination, memory still
                    arriving) until the transfer completes;
``after_transfer``  from ``mobility: memory transfer completed.`` (v6.0+), the factor reset to 0 %, or the
                    hook's ``post`` line (which runs only after completion);
``after_abort``     after a migration that never resumed (final suspend failure, VASI left Suspending).

Pre-v6.0 kernels print no completion message and pre-v5.11 kernels nothing on success; there a
``Post-mobility ...`` failure line or any other ``mobility:`` message still shows that the partition
resumed (phase ``transfer``), and the transfer window stays open until the hook's ``post`` line or the end
of the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

from lpmsim.triage.events import Phase, PhaseName

Marker = Literal["start", "suspend", "resume", "transfer", "complete", "abort", "none"]

_ATTEMPT = re.compile(r"Partition suspend attempt (\d+) of (\d+)")


def classify_mobility(msg: str) -> Marker:
    """Which phase marker a ``mobility: <msg>`` line is (arch/powerpc/platforms/pseries/mobility.c)."""
    if "calling ibm,suspend-me" in msg or "Will retry partition suspend" in msg or "H_JOIN" in msg:
        return "suspend"
    if "ibm,suspend-me error" in msg:
        return "suspend"
    m = _ATTEMPT.search(msg)
    if m is not None:
        return "abort" if m.group(1) == m.group(2) else "suspend"
    if "after failed suspend" in msg or "VASI state poll error" in msg or "H_VASI_SIGNAL error" in msg:
        return "abort"
    if "waking all threads" in msg:
        return "resume"
    if "memory transfer completed" in msg:
        return "complete"
    if "unexpected H_VASI_STATE result" in msg:
        return "abort"  # before suspend: the migration never starts; after resume the tracker ignores it
    return "transfer"


def classify_guard(msg: str) -> Marker:
    """Phase marker of an ``lpmsim-guard: ... (phase X)`` line written by our drmgr hook."""
    m = re.search(r"\(phase (\w+)\)", msg)
    phase = m.group(1) if m else ""
    if phase in ("check", "pre"):
        return "start"
    if phase == "post":
        return "complete"
    if phase in ("abort", "cancel", "undo"):
        return "abort"
    return "none"


def classify_factor(pct: int) -> Marker:
    """``Set the NMI watchdog timeout factor to N%``: N > 0 at Suspending, 0 after completion/cancel."""
    return "suspend" if pct > 0 else "complete"


@dataclass
class PhaseTracker:
    """Follows phase markers in file order; records every phase change."""

    state: PhaseName | None = None
    migration: int = 0
    changes: list[tuple[PhaseName, int, int, float | None]] = field(default_factory=list)

    def _go(self, name: PhaseName, line: int, time_s: float | None, new: bool = False) -> None:
        if new:
            self.migration += 1
        self.state = name
        self.changes.append((name, self.migration, line, time_s))

    def mark(self, marker: Marker, line: int, time_s: float | None) -> None:
        s = self.state
        idle = s is None or s in ("after_transfer", "after_abort")
        if marker == "start":
            if idle:
                self._go("before_suspend", line, time_s, new=True)
        elif marker == "suspend":
            if idle:
                self._go("suspend", line, time_s, new=True)
            elif s == "before_suspend":
                self._go("suspend", line, time_s)
        elif marker in ("resume", "transfer"):
            if idle:
                self._go("transfer", line, time_s, new=True)
            elif s in ("before_suspend", "suspend"):
                self._go("transfer", line, time_s)
        elif marker == "complete":
            if s in ("transfer",):
                self._go("after_transfer", line, time_s)
            elif s == "suspend":
                # the factor is reset without a resume: the suspend failed and the migration was cancelled
                self._go("after_abort", line, time_s)
            elif s == "before_suspend":
                self._go("after_transfer", line, time_s)
            elif s is None:
                self._go("after_transfer", line, time_s, new=True)
        elif marker == "abort" and s in ("before_suspend", "suspend"):
            self._go("after_abort", line, time_s)

    def current(self) -> tuple[PhaseName | None, int | None]:
        return self.state, (self.migration or None)

    def build(self, total_lines: int, first_s: float | None, last_s: float | None) -> list[Phase]:
        """The phase list: each phase ends where the next one starts, the last one at the end of the log."""
        phases: list[Phase] = []
        for i, (name, mig, line, t) in enumerate(self.changes):
            if i == 0 and name != "before_suspend":
                phases.append(Phase("before_suspend", mig, 1, first_s))
            phases.append(Phase(name, mig, line, t))
        for a, b in pairwise(phases):
            a.end_line, a.end_s = b.start_line, b.start_s
        if phases:
            phases[-1].end_line, phases[-1].end_s = total_lines, last_s
        return phases

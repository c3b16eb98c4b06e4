"""``lpmsim.triage``: read a real console log as ``lpmsim triage`` does, as typed objects.

It wraps ``lpmsim.triage.analyze.triage_file``; the events are ``lpmsim.triage.events.Event``
objects (built on demand from the compact ``EventStore``), the phases ``Phase`` objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lpmsim.triage.analyze import triage_file
from lpmsim.triage.events import Event, Phase, Triage


@dataclass(frozen=True)
class TriageOutput:
    """What one log holds.

    ``events``: every announced event in file order (``Event``: ``type``, ``line``, ``time_s``,
    ``cpus``, ``duration_s``, ``task``, ``phase``, ``verdict``, ``reason``...).  ``phases``: the
    migration phases found (``Phase``: ``name``, ``migration``, start and end line and time).
    ``warnings``: what could not be read as expected.  ``result``: the underlying ``Triage``
    (``result.to_json()`` is the content of ``lpmsim triage --json``'s ``events`` and ``phases``)."""

    result: Triage

    @property
    def events(self) -> Sequence[Event]:
        return self.result.events

    @property
    def phases(self) -> tuple[Phase, ...]:
        return tuple(self.result.phases)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self.result.warnings)


def triage(path: str | Path, *, since: float | None = None, until: float | None = None) -> TriageOutput:
    """Triage the log at ``path`` (plain, gzip or xz; ``"-"`` reads stdin).  ``since``/``until``
    keep the events whose timestamp lies in that range (seconds of the printk clock).  Raises
    ``lpmsim.triage.reader.LogOpenError`` if the file cannot be opened."""
    return TriageOutput(triage_file(str(path), since=since, until=until))

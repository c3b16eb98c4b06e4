"""The Python API: what the CLI does, as typed objects for a notebook (docs/api.md).

Everything here is also reachable as ``lpmsim.<name>`` (loaded lazily, see ``lpmsim/__init__.py``).
"""

from __future__ import annotations

from lpmsim.api.advise import Advice, AdviseError, advise
from lpmsim.api.batch import Comparison, Sweep, compare, sweep
from lpmsim.api.run import KernelEvent, RunOutput, run, simulate
from lpmsim.api.source import Source
from lpmsim.api.triage import TriageOutput, triage

__all__ = [
    "Advice",
    "AdviseError",
    "Comparison",
    "KernelEvent",
    "RunOutput",
    "Source",
    "Sweep",
    "TriageOutput",
    "advise",
    "compare",
    "run",
    "simulate",
    "sweep",
    "triage",
]

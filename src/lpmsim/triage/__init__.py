"""``lpmsim triage``: read a real kernel log and say what fired, where, in which migration phase, and why.

This package is also the Python API's ``lpmsim.triage(path)``: a package and a function cannot
share the name ``lpmsim.triage``, so the package is callable (``lpmsim.api.triage.triage``).
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING

from lpmsim.triage.analyze import triage_file, triage_text
from lpmsim.triage.events import Bound, Event, Phase, Triage

if TYPE_CHECKING:
    from lpmsim.api.triage import TriageOutput

__all__ = ["Bound", "Event", "Phase", "Triage", "triage_file", "triage_text"]


class _CallableModule(types.ModuleType):
    def __call__(
        self, path: str | Path, *, since: float | None = None, until: float | None = None
    ) -> TriageOutput:
        """``lpmsim.triage(path)``: see ``lpmsim.api.triage.triage``."""
        from lpmsim.api.triage import triage

        return triage(path, since=since, until=until)


sys.modules[__name__].__class__ = _CallableModule

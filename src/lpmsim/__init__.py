"""lpmsim: what a Linux guest's lockup detectors do while its IBM Power partition is live-migrated.

This top-level module stays import-light on purpose: ``lpmsim.guard`` runs as a drmgr hook on a
production partition in the middle of a migration and must import only the standard library, and
importing ``lpmsim.guard`` executes this file first.  The public API is therefore loaded lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Scenario", "__version__", "load_scenario", "run_scenario"]

if TYPE_CHECKING:
    from lpmsim.config.loader import load_scenario
    from lpmsim.config.scenario import Scenario
    from lpmsim.runner import run_scenario


def __getattr__(name: str) -> Any:
    if name == "load_scenario":
        from lpmsim.config.loader import load_scenario

        return load_scenario
    if name == "Scenario":
        from lpmsim.config.scenario import Scenario

        return Scenario
    if name == "run_scenario":
        from lpmsim.runner import run_scenario

        return run_scenario
    raise AttributeError(name)

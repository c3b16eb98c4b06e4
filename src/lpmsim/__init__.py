"""lpmsim: what a Linux guest's lockup detectors do while its IBM Power partition is live-migrated.

The Python API (docs/api.md)::

    import lpmsim
    r = lpmsim.run("lpm-2022", seed=3, set={"platform.link_gbps": 5})
    r.summary, r.events, r.log            # summary.json, typed reports, dmesg.log
    c = lpmsim.compare("small", ["none=none", "f200=nmi-factor:200"], runs=10)
    c.rows                                # a pandas.DataFrame (a pyarrow.Table without pandas)
    t = lpmsim.triage("console.log")      # t.events, t.phases
    a = lpmsim.advise("lpm-2022", kernel="5.14.21")   # a.recommendation, a.guard_toml, a.race

This top-level module stays import-light on purpose: ``lpmsim.guard`` runs as a drmgr hook on a
production partition in the middle of a migration and must import only the standard library, and
importing ``lpmsim.guard`` executes this file first.  The public API is therefore loaded lazily
(module ``__getattr__``).  ``lpmsim.triage`` is the triage package, made callable: it is also the
function ``lpmsim.api.triage.triage``; ``lpmsim.advise`` likewise (``lpmsim.api.advise.advise``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Advice",
    "AdviseError",
    "Comparison",
    "KernelEvent",
    "RunOutput",
    "Scenario",
    "ScenarioError",
    "Sweep",
    "TriageOutput",
    "__version__",
    "advise",
    "compare",
    "load_scenario",
    "run",
    "run_scenario",
    "sweep",
    "triage",
]

if TYPE_CHECKING:
    from lpmsim.api.advise import Advice, AdviseError, advise
    from lpmsim.api.batch import Comparison, Sweep, compare, sweep
    from lpmsim.api.run import KernelEvent, RunOutput, run
    from lpmsim.api.triage import TriageOutput, triage
    from lpmsim.config.loader import ScenarioError, load_scenario
    from lpmsim.config.scenario import Scenario
    from lpmsim.runner import run_scenario

# name -> the module that defines it
_LAZY = {
    "Advice": "lpmsim.api.advise",
    "AdviseError": "lpmsim.api.advise",
    "Comparison": "lpmsim.api.batch",
    "Sweep": "lpmsim.api.batch",
    "compare": "lpmsim.api.batch",
    "sweep": "lpmsim.api.batch",
    "KernelEvent": "lpmsim.api.run",
    "RunOutput": "lpmsim.api.run",
    "run": "lpmsim.api.run",
    "TriageOutput": "lpmsim.api.triage",
    "ScenarioError": "lpmsim.config.loader",
    "load_scenario": "lpmsim.config.loader",
    "Scenario": "lpmsim.config.scenario",
    "run_scenario": "lpmsim.runner",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name in ("triage", "advise"):  # the packages, callable (see the module docstring)
        return importlib.import_module(f"lpmsim.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lpmsim' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

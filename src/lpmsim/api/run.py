"""``lpmsim.run``: simulate one scenario and get its summary, typed reports and kernel log.

It wraps ``lpmsim.runner.run_scenario``, the function ``lpmsim run`` calls: the summary is the
content of ``summary.json`` and the log the lines of ``dmesg.log`` for the same scenario and seed
(``wall_s`` apart, which is the run's own wall time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lpmsim.api.source import Source, load
from lpmsim.config.scenario import Scenario
from lpmsim.outputs.events import KernelEvent
from lpmsim.outputs.trace import RunTrace, TraceRecorder
from lpmsim.runner import Progress, run_scenario

__all__ = ["KernelEvent", "RunOutput", "RunTrace", "run", "simulate"]


@dataclass(frozen=True)
class RunOutput:
    """A finished run.

    ``summary``: the content of ``summary.json`` (a JSON-ready dict; see docs/outputs).
    ``events``: its ``events`` as ``KernelEvent`` objects, in time order.
    ``log``: the kernel log, one line each (the content of ``dmesg.log``).
    ``trace``: with ``trace=True``, the run's event trace (``RunTrace``: Arrow tables ``states``,
    ``cpus``, ``series``, ``reports``, ``log``, ``phases``; ``.states.to_pandas()`` for pandas),
    what ``lpmsim run --trace --out DIR`` writes to ``DIR/trace/``; ``None`` otherwise."""

    scenario: Scenario
    summary: dict[str, Any]
    events: tuple[KernelEvent, ...]
    log: tuple[str, ...]
    trace: RunTrace | None = None

    @property
    def outcome(self) -> str:
        """``survived``, ``panic`` or ``crash``."""
        return str(self.summary["outcome"])

    @property
    def seed(self) -> int:
        return int(self.summary["seed"])


def simulate(scenario: Scenario, progress: Progress | None = None, trace: bool = False) -> RunOutput:
    """Run a validated ``Scenario`` (``progress(now_s, horizon_s)`` as ``lpmsim run`` draws it;
    ``trace``: record the event trace); ``lpmsim run`` itself runs through this function."""
    lines: list[str] = []
    tracer = TraceRecorder(scenario.partition.vcpus) if trace else None
    summary = run_scenario(scenario, progress, kernel_log=lines, tracer=tracer)
    events = tuple(KernelEvent.from_json(e) for e in summary["events"])
    return RunOutput(
        scenario=scenario,
        summary=summary,
        events=events,
        log=tuple(lines),
        trace=tracer.build(summary) if tracer is not None else None,
    )


def run(
    scenario: Source = "default",
    *,
    seed: int | None = None,
    set: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    trace: bool = False,
) -> RunOutput:
    """Simulate one migration, as ``lpmsim run`` does (``trace=True``: as ``lpmsim run --trace``).

    ``scenario``: a preset name (``"lpm-2022"``), a scenario TOML file or a ``Scenario``;
    ``seed`` overrides ``sim.seed``; ``set`` maps field paths to values, like ``--set``
    (``{"platform.link_gbps": 5}``).  Raises ``ScenarioError`` (one line naming the field) on
    invalid input, before anything runs."""
    return simulate(load(scenario, set, seed), progress, trace)

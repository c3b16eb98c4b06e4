"""Scenario files: the pydantic schema, named presets, loading with ``base`` and ``--set`` overrides."""

from lpmsim.config.loader import ScenarioError, load_scenario, resolve_scenario
from lpmsim.config.scenario import Scenario

__all__ = ["Scenario", "ScenarioError", "load_scenario", "resolve_scenario"]

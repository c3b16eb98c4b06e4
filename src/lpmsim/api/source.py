"""What the API's first argument names: a preset, a scenario file or a ``Scenario``; ``set`` overrides.

``set`` maps a field path to a Python value; each item becomes a ``--set FIELD=VALUE`` override
(the value written as TOML) and goes through ``lpmsim.config.loader.apply_overrides`` and
validation like the CLI's, so a bad field raises the same one-line ``ScenarioError`` naming it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lpmsim.config.loader import (
    ScenarioError,
    apply_overrides,
    build_scenario,
    preset_names,
    resolve_scenario,
)
from lpmsim.config.scenario import Scenario

Source = str | Path | Scenario
"""A preset name (``"lpm-2022"``), a scenario TOML file (``str`` or ``Path``) or a ``Scenario``."""


def toml_value(value: Any) -> str:
    """``value`` written as a TOML value, as it would follow ``--set FIELD=``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise ScenarioError(f"set: cannot write {type(value).__name__} value {value!r} as a scenario value")


def overrides(settings: Mapping[str, Any] | None) -> list[str]:
    """``{"platform.link_gbps": 5}`` -> ``["platform.link_gbps=5"]``."""
    if not settings:
        return []
    out: list[str] = []
    for key, value in settings.items():
        if not isinstance(key, str):
            raise ScenarioError(f"set: field paths are strings, got {key!r}")
        out.append(f"{key}={toml_value(value)}")
    return out


def _is_preset(text: str) -> bool:
    """A string is read as a preset name unless it looks like a file (a separator, ``.toml``, or an
    existing file), so a mistyped preset gets the loader's list of known presets."""
    if text in preset_names():
        return True
    return not ("/" in text or text.endswith(".toml") or Path(text).is_file())


def raw_scenario(source: Source, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The raw (merged, overridden) scenario mapping of ``source`` with ``settings`` applied, as
    ``lpmsim.config.loader.resolve_scenario`` returns it for the CLI (nothing validated yet)."""
    sets = overrides(settings)
    if isinstance(source, Scenario):
        data = source.model_dump(mode="json")
        if sets and "description" not in (settings or {}):
            data["description"] = ""  # as the loader does: overridden values, a new description
        return apply_overrides(data, sets)
    if isinstance(source, str) and _is_preset(source):
        return resolve_scenario(preset=source, overrides=sets)
    if isinstance(source, str | Path):
        return resolve_scenario(Path(source), overrides=sets)
    raise TypeError(f"expected a preset name, a scenario file or a Scenario, got {type(source).__name__}")


def load(source: Source, settings: Mapping[str, Any] | None = None, seed: int | None = None) -> Scenario:
    """The validated scenario (``ScenarioError`` with the field path if it is not valid)."""
    data = raw_scenario(source, settings)
    if seed is not None:
        sim = data.get("sim")
        data["sim"] = {**(sim if isinstance(sim, dict) else {}), "seed": seed}
    return build_scenario(data)

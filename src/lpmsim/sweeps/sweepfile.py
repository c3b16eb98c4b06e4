"""The sweep file (``lpmsim sweep SWEEP.toml``): a base scenario, axes, variants and seeds.

::

    name = "vcpus-by-policy"                   # optional (default: the file's stem)
    preset = "small"                           # the base: a preset, or
    # scenario = "case.toml"                   #   a scenario file (relative to this file)
    set = ["partition.memory_gib=0.25"]        # --set-style overrides of the base
    variants = ["none=none", "f200=nmi-factor:200", "df=kernel,platform.discipline=demand-first"]
    seeds = { first = 1, count = 20 }          # or: seeds = 20 (first = 1)

    [axes]                                     # any scenario field; the cartesian product
    "partition.vcpus" = [8, 16, 32]
    "platform.link_gbps" = { from = 10, to = 40, step = 10 }   # 10, 20, 30, 40 (to included)

Variants use the ``lpmsim compare`` grammar (``NAME=POLICY[,key=value...]``).  A sweep without
axes is a comparison.  Everything is checked before anything runs; a refusal is one
``SweepFileError`` line naming the file and the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lpmsim.config.loader import ScenarioError, build_scenario, read_toml_file, resolve_scenario
from lpmsim.sweeps.plan import MAX_SEED, Axis, Plan, build_plan
from lpmsim.sweeps.rows import COLUMN_NAMES
from lpmsim.sweeps.variants import VariantError, parse_variants

KEYS = ("name", "preset", "scenario", "set", "variants", "seeds", "axes")
RESERVED = ("mitigation", "sim.seed")
MAX_RANGE = 100_000


class SweepFileError(ValueError):
    """A sweep file that cannot be run (one line)."""


@dataclass(frozen=True)
class SweepFile:
    path: Path
    name: str
    base: dict[str, Any]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    axes: tuple[Axis, ...]

    def plan(self) -> Plan:
        try:
            return build_plan(self.base, self.variants, self.seeds, self.axes, self.name)
        except (VariantError, ScenarioError) as exc:
            raise SweepFileError(f"{self.path}: {exc}") from None


def _range(path: Path, fld: str, spec: Mapping[str, Any]) -> tuple[Any, ...]:
    extra = set(spec) - {"from", "to", "step"}
    if extra or not {"from", "to"} <= set(spec):
        raise SweepFileError(
            f"{path}: axes.{fld}: a range is {{ from = A, to = B, step = S }} (got keys {', '.join(sorted(spec))})"
        )
    lo, hi, step = spec["from"], spec["to"], spec.get("step", 1)
    for k, v in (("from", lo), ("to", hi), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise SweepFileError(f"{path}: axes.{fld}.{k}: expected a finite number, got {v!r}")
    if step <= 0:
        raise SweepFileError(f"{path}: axes.{fld}.step: must be > 0, got {step}")
    if hi < lo:
        raise SweepFileError(f"{path}: axes.{fld}: empty range (to {hi} < from {lo})")
    n = math.floor((hi - lo) / step + 1e-9) + 1
    if n > MAX_RANGE:
        raise SweepFileError(f"{path}: axes.{fld}: {n} values; at most {MAX_RANGE}")
    if all(isinstance(v, int) for v in (lo, step)):
        return tuple(lo + i * step for i in range(n))
    return tuple(round(lo + i * step, 12) for i in range(n))


def _json_value(v: Any) -> bool:
    if v is None or isinstance(v, str | bool | int):
        return True
    if isinstance(v, float):
        return True
    if isinstance(v, list):
        return all(_json_value(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _json_value(x) for k, x in v.items())
    return False


def _axes(path: Path, raw: Any) -> tuple[Axis, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise SweepFileError(f"{path}: axes: expected a table of FIELD = [values] or a range")
    out: list[Axis] = []
    for fld, spec in raw.items():
        fld = str(fld)
        if isinstance(spec, Mapping) and "from" not in spec and "to" not in spec:
            raise SweepFileError(
                f'{path}: axes.{fld}: write the field as one quoted key, e.g. "partition.vcpus" = [8, 16]'
            )
        if any(fld == r or fld.startswith(r + ".") for r in RESERVED):
            owner = "variants" if fld.startswith("mitigation") else "seeds"
            raise SweepFileError(f"{path}: axes.{fld}: set by the sweep's {owner}, not an axis")
        if fld in COLUMN_NAMES or fld == "key":
            raise SweepFileError(f"{path}: axes.{fld}: not a scenario field")
        if isinstance(spec, Mapping):
            values = _range(path, fld, spec)
        elif isinstance(spec, list):
            values = tuple(spec)
        else:
            raise SweepFileError(f"{path}: axes.{fld}: expected a list of values or {{ from, to, step }}")
        if not values:
            raise SweepFileError(f"{path}: axes.{fld}: empty axis: give at least one value")
        bad = next((v for v in values if not _json_value(v)), None)
        if bad is not None:
            raise SweepFileError(f"{path}: axes.{fld}: unsupported value {bad!r}")
        seen: list[Any] = []
        for v in values:
            if v in seen:
                raise SweepFileError(f"{path}: axes.{fld}: the value {v!r} is given twice")
            seen.append(v)
        out.append(Axis(fld, values))
    return tuple(out)


def _seeds(path: Path, raw: Any) -> tuple[int, ...]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        first, count = 1, raw
    elif isinstance(raw, Mapping) and set(raw) <= {"first", "count"} and "count" in raw:
        first, count = raw.get("first", 1), raw["count"]
    else:
        raise SweepFileError(f"{path}: seeds: expected seeds = N or seeds = {{ first = S, count = N }}")
    for k, v in (("first", first), ("count", count)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise SweepFileError(f"{path}: seeds.{k}: expected an integer, got {v!r}")
    if count < 1:
        raise SweepFileError(f"{path}: seeds.count: need at least one seed, got {count}")
    if first < 0 or first + count - 1 > MAX_SEED:
        raise SweepFileError(f"{path}: seeds: must stay within [0, 2**63-1]")
    return tuple(range(first, first + count))


def load_sweep(path: Path) -> SweepFile:
    """Read and check a sweep file (every (point, variant) scenario is validated by ``plan()``)."""
    try:
        data = read_toml_file(path, "sweep")
    except ScenarioError as exc:
        raise SweepFileError(str(exc)) from None
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise SweepFileError(f"{path}: {unknown[0]}: unknown key (expected {', '.join(KEYS)})")
    preset, scenario = data.get("preset"), data.get("scenario")
    if preset is not None and scenario is not None:
        raise SweepFileError(f"{path}: give either preset or scenario, not both")
    for k, v in (("preset", preset), ("scenario", scenario), ("name", data.get("name"))):
        if v is not None and not isinstance(v, str):
            raise SweepFileError(f"{path}: {k}: expected a string, got {v!r}")
    sets = data.get("set", [])
    if not isinstance(sets, list) or not all(isinstance(s, str) for s in sets):
        raise SweepFileError(f'{path}: set: expected a list of "FIELD=VALUE" strings')
    for s in sets:
        key = s.partition("=")[0].strip()
        if key == "mitigation" or key.startswith("mitigation."):
            raise SweepFileError(f"{path}: set: {s}: the policy is what each variant sets")
    variants = data.get("variants")
    if not isinstance(variants, list) or not variants or not all(isinstance(v, str) for v in variants):
        raise SweepFileError(
            f'{path}: variants: expected a list of "NAME=POLICY[,key=value...]", at least one'
        )
    try:
        parse_variants(variants)
    except VariantError as exc:
        raise SweepFileError(f"{path}: {exc}") from None
    if "seeds" not in data:
        raise SweepFileError(f"{path}: seeds: missing (seeds = N or seeds = {{ first = S, count = N }})")
    seeds = _seeds(path, data["seeds"])
    axes = _axes(path, data.get("axes"))
    scenario_path = None if scenario is None else (path.parent / scenario)
    try:
        base = resolve_scenario(scenario_path, preset, sets)
        build_scenario({**base, "mitigation": {}})
    except ScenarioError as exc:
        raise SweepFileError(f"{path}: {exc}") from None
    name = data.get("name") or path.stem
    return SweepFile(path, str(name), base, tuple(variants), seeds, axes)

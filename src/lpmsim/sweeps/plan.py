"""What a comparison or a sweep will run: axis points x variants x seeds, each run with a stable key.

A run's key is ``SCENARIO_HASH/VARIANT/SEED``: the first 16 hex digits of the SHA-256 of the run's
validated scenario (with ``sim.seed`` set to 0, as canonical JSON), the variant's name and the
seed.  The same scenario, variant and seed give the same key in any process, on any machine and
in any session, which is what lets a sweep resume: the result store holds one row per key, and a
new session runs only the keys that have none.  A plan's digest is the SHA-256 of its keys in
order; a store refuses a plan with another digest.

Everything is checked before anything runs: a refusal is one ``VariantError`` line.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lpmsim.config.loader import _merge
from lpmsim.config.scenario import Scenario
from lpmsim.sweeps.rows import RunSpec
from lpmsim.sweeps.variants import Variant, VariantError, parse_variants, variant_scenario

MAX_SEED = 2**63 - 1

Point = tuple[tuple[str, Any], ...]
"""An axis point: (field, value) pairs in the order of the axes (empty for a comparison)."""


@dataclass(frozen=True)
class Axis:
    """A scenario field (dotted path) and the values a sweep gives it, in order."""

    field: str
    values: tuple[Any, ...]


def seeds_for(seed: int, runs: int) -> list[int]:
    """The seeds every variant runs: ``seed, seed+1, ..., seed+runs-1``."""
    if runs < 1:
        raise VariantError(f"--runs {runs}: need at least one run")
    if seed < 0 or seed + runs - 1 > MAX_SEED:
        raise VariantError(f"--seed {seed} with --runs {runs}: seeds must stay within [0, 2**63-1]")
    return list(range(seed, seed + runs))


def as_variants(variants: Sequence[Variant | str]) -> list[Variant]:
    if not variants:
        raise VariantError("give at least one --variant NAME=POLICY[,key=value...]")
    texts = [v for v in variants if isinstance(v, str)]
    parsed = iter(parse_variants(texts))
    out = [next(parsed) if isinstance(v, str) else v for v in variants]
    names = [v.name for v in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise VariantError(f"variant {dup}: the name is used twice")
    return out


def with_seed(sc: Scenario, seed: int) -> Scenario:
    return sc.model_copy(update={"sim": sc.sim.model_copy(update={"seed": seed})})


def scenario_hash(sc: Scenario) -> str:
    """16 hex digits identifying ``sc`` whatever its ``sim.seed``."""
    data = with_seed(sc, 0).model_dump(mode="python")
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_key(scenario_digest: str, variant: str, seed: int) -> str:
    return f"{scenario_digest}/{variant}/{seed}"


def point_text(point: Point) -> str:
    """``a.b=1, c.d=x`` (empty for the single point of a comparison)."""
    return ", ".join(f"{f}={v}" for f, v in point)


def point_data(base: Mapping[str, Any], point: Point) -> dict[str, Any]:
    """``base`` with each axis field of ``point`` set (not validated)."""
    data = dict(base)
    for fld, value in point:
        keys = fld.split(".")
        node: Any = data
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node, Mapping) else None
            if node is not None and not isinstance(node, Mapping):
                raise VariantError(f"axis {fld}: {k} is not a section")
        nested: Any = value
        for k in reversed(keys):
            nested = {k: nested}
        data = _merge(data, nested)
    return data


@dataclass(frozen=True)
class Plan:
    """A checked comparison or sweep, ready to run: every run's spec, nothing run yet.

    ``specs`` are ordered by point, then variant (in the order given), then seed."""

    name: str
    variants: list[Variant]
    seeds: list[int]
    specs: list[RunSpec]
    axes: tuple[Axis, ...] = ()
    points: tuple[Point, ...] = ((),)

    @property
    def scenarios(self) -> dict[str, Scenario]:
        """Each variant's scenario at the first point, with the first seed."""
        out: dict[str, Scenario] = {}
        first = self.points[0]
        for s in self.specs:
            if s.point == first:
                out.setdefault(s.variant, s.scenario)
        return out

    def cell_scenarios(self) -> dict[tuple[Point, str], Scenario]:
        """The scenario of every (point, variant), with the first seed."""
        out: dict[tuple[Point, str], Scenario] = {}
        for s in self.specs:
            out.setdefault((s.point, s.variant), s.scenario)
        return out

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.specs]

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.keys).encode()).hexdigest()


def build_plan(
    base: Mapping[str, Any],
    variants: Sequence[Variant | str],
    seeds: Sequence[int],
    axes: Sequence[Axis] = (),
    name: str | None = None,
) -> Plan:
    """Every run of ``axes`` (their cartesian product, the first axis outermost) x ``variants`` x
    ``seeds`` on top of ``base`` (a raw scenario mapping); each (point, variant) is validated."""
    vs = as_variants(variants)
    if not seeds:
        raise VariantError("need at least one seed")
    points: list[Point] = [
        tuple(p) for p in itertools.product(*[[(a.field, v) for v in a.values] for a in axes])
    ]
    specs: list[RunSpec] = []
    for point in points:
        data = point_data(base, point)
        for v in vs:
            try:
                sc = variant_scenario(data, v, seeds[0])
            except VariantError as exc:
                if not point:
                    raise
                raise VariantError(f"at {point_text(point)}: {exc}") from None
            digest = scenario_hash(sc)
            policy = sc.mitigation.policy
            specs.extend(
                RunSpec(v.name, policy, s, with_seed(sc, s), run_key(digest, v.name, s), point) for s in seeds
            )
    dup = next((k for k, n in Counter(s.key for s in specs).items() if n > 1), None)
    if dup is not None:
        raise VariantError(f"two runs of the plan are the same run ({dup}): an axis repeats a value")
    return Plan(str(name or base.get("name", "custom")), vs, list(seeds), specs, tuple(axes), tuple(points))


def prepare(base: Mapping[str, Any], variants: Sequence[Variant | str], runs: int, seed: int = 1) -> Plan:
    """A comparison: check everything and plan the runs (``VariantError`` with one line if anything
    is refused)."""
    seeds = seeds_for(seed, runs)
    return build_plan(base, variants, seeds)


def plan_runs(
    base: Mapping[str, Any], variants: Sequence[Variant | str], runs: int, seed: int = 1
) -> list[RunSpec]:
    """Every run of the comparison, variant by variant and seed by seed; checks everything first."""
    return prepare(base, variants, runs, seed).specs

"""``--variant NAME=POLICY[,key=value...]``: one arm of a comparison, and the scenario it runs.

``POLICY`` is a policy string (``lpmsim.policies.spec``).  Each ``key=value`` after it is either a
policy option (a bare name, e.g. ``multiplier=4`` for ``adaptive-factor``) or a scenario field (a
dotted path, e.g. ``platform.discipline=demand-first``), so that platform fixes are variants too:
``--variant df=kernel,platform.discipline=demand-first``.  Values are read as in ``--set``.

Everything is checked before a run starts: an unknown policy or option, a malformed variant or a
field set to an invalid value is a one-line ``VariantError`` naming the variant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lpmsim.config.loader import ScenarioError, _merge, apply_overrides, build_scenario, parse_value
from lpmsim.config.scenario import Scenario
from lpmsim.policies.spec import PolicyError, parse_policy

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


class VariantError(ValueError):
    """A variant that cannot run (the message is one line and names the variant)."""


@dataclass(frozen=True)
class Variant:
    name: str
    policy: str
    options: Mapping[str, Any] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()

    def __str__(self) -> str:
        items = [self.policy, *(f"{k}={v}" for k, v in self.options.items()), *self.overrides]
        return f"{self.name}={','.join(items)}"


def _split_items(text: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes (values may be TOML arrays or tables)."""
    out: list[str] = []
    depth = 0
    quote: str | None = None
    cur: list[str] = []
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return out


def parse_variant(text: str) -> Variant:
    """``NAME=POLICY[,key=value...]`` -> Variant (the policy and its options checked)."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not rest.strip():
        raise VariantError(
            f"--variant {text!r}: expected NAME=POLICY[,key=value...], e.g. f200=nmi-factor:200"
        )
    if not NAME_RE.match(name):
        raise VariantError(
            f"--variant {text!r}: the name {name!r} must start with a letter or digit and use only "
            "letters, digits and _ . @ -"
        )
    items = [i.strip() for i in _split_items(rest)]
    policy, extra = items[0], items[1:]
    options: dict[str, Any] = {}
    overrides: list[str] = []
    for item in extra:
        key, isep, raw = item.partition("=")
        key = key.strip()
        if not isep or not key or not raw.strip():
            raise VariantError(f"variant {name}: {item!r} is not key=value")
        if "." in key:
            overrides.append(f"{key}={raw.strip()}")
        else:
            if key in options:
                raise VariantError(f"variant {name}: option {key!r} is given twice")
            options[key] = parse_value(raw.strip())
    try:
        parse_policy(policy, options)
    except PolicyError as exc:
        raise VariantError(f"variant {name}: {exc}") from None
    return Variant(name, policy, options, tuple(overrides))


def parse_variants(texts: Sequence[str]) -> list[Variant]:
    """Parse every ``--variant``; names must be unique."""
    out: list[Variant] = []
    seen: set[str] = set()
    for t in texts:
        v = parse_variant(t)
        if v.name in seen:
            raise VariantError(f"variant {v.name}: the name is used twice")
        seen.add(v.name)
        out.append(v)
    return out


def variant_data(base: Mapping[str, Any], variant: Variant) -> dict[str, Any]:
    """The raw scenario mapping of ``variant`` on top of ``base`` (not validated)."""
    try:
        data = apply_overrides(dict(base), variant.overrides)
    except ScenarioError as exc:
        raise VariantError(f"variant {variant.name}: {exc}") from None
    mit = {"policy": variant.policy, "options": dict(variant.options)}
    data = {**data, "mitigation": mit}
    return data


def variant_scenario(base: Mapping[str, Any], variant: Variant, seed: int | None = None) -> Scenario:
    """The validated scenario of ``variant`` (with ``sim.seed = seed`` if given)."""
    data = variant_data(base, variant)
    if seed is not None:
        data = _merge(data, {"sim": {"seed": seed}})
    try:
        return build_scenario(data)
    except ScenarioError as exc:
        raise VariantError(f"variant {variant.name}: {exc}") from None

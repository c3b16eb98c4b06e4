"""Load a scenario: preset or file, ``base = "preset"`` inheritance, ``--set a.b=value`` overrides.

Every failure becomes a ``ScenarioError`` whose message is one line naming the field path and the
reason; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lpmsim.config.memory import exact_memory_problem
from lpmsim.config.scenario import Scenario


class ScenarioError(ValueError):
    """Invalid scenario input; ``str(err)`` is a single line fit for the user."""


def preset_names() -> list[str]:
    files = resources.files("lpmsim").joinpath("presets")
    return sorted(p.name[: -len(".toml")] for p in files.iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    if name not in preset_names():
        raise ScenarioError(f"preset: unknown preset {name!r} (known: {', '.join(preset_names())})")
    return resources.files("lpmsim").joinpath("presets", f"{name}.toml").read_text(encoding="utf-8")


def workload_names() -> list[str]:
    files = resources.files("lpmsim").joinpath("presets", "workloads")
    return sorted(p.name[: -len(".toml")] for p in files.iterdir() if p.name.endswith(".toml"))


def workload_text(name: str) -> str:
    if name not in workload_names():
        raise ScenarioError(
            f"workload.preset: unknown workload preset {name!r} (known: {', '.join(workload_names())})"
        )
    return (
        resources.files("lpmsim").joinpath("presets", "workloads", f"{name}.toml").read_text(encoding="utf-8")
    )


def _expand_workload(data: dict[str, Any]) -> dict[str, Any]:
    """Put the workload preset under the scenario's own ``workload`` fields."""
    wl = data.get("workload", {})
    if not isinstance(wl, dict):
        raise ScenarioError("workload: expected a table")
    name = wl.get("preset", "oltp")
    if not isinstance(name, str):
        raise ScenarioError("workload.preset: expected a workload preset name")
    base = _parse_toml(workload_text(name), f"workload preset {name}")
    return {**data, "workload": _merge({**base, "preset": name}, wl)}


MAX_DEPTH = 24
"""Deepest nesting of tables and arrays a scenario may have (the schema needs 6); deeper input is
refused in one line instead of exhausting the interpreter's stack in the parser or the merge."""


def _parse_toml(text: str, origin: str) -> dict[str, Any]:
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark, as some editors write
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{origin}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{origin}: nested too deeply (more than {MAX_DEPTH} levels)") from None
    check_depth(data, origin)
    return data


def read_toml_file(p: Path, what: str) -> dict[str, Any]:
    """A TOML file from the user (``what``: "scenario", "sweep"...), read defensively: one-line
    ScenarioError for a missing or unreadable file, a directory, non-UTF-8 bytes, bad TOML or
    nesting deeper than MAX_DEPTH; a UTF-8 byte-order mark is accepted."""
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ScenarioError(f"{p}: is a directory, expected a TOML {what} file") from None
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(f"{p}: not valid TOML: the file is not UTF-8 text") from None
    return _parse_toml(text, str(p))


def check_depth(data: Any, origin: str) -> None:
    """Refuse tables and arrays nested deeper than MAX_DEPTH (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ScenarioError(f"{origin}: nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(node, Mapping):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list | tuple):
            stack.extend((v, depth + 1) for v in node)


# Fields where an infinite value means something: a scripted state that never ends.
INFINITE_OK = frozenset({"script[].duration_s"})


def check_finite(data: Mapping[str, Any]) -> None:
    """Refuse NaN anywhere and infinities except where they mean 'never' (INFINITE_OK), naming the
    field: an infinite memory, link or time limit is not a scenario but a division by zero."""
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, Mapping):
            stack.extend((v, (*loc, str(k))) for k, v in node.items())
        elif isinstance(node, list | tuple):
            stack.extend((v, (*loc, i)) for i, v in enumerate(node))
        elif isinstance(node, float) and not math.isfinite(node):
            generic = "".join("[]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
            if math.isnan(node):
                raise ScenarioError(f"{_loc(loc)}: nan is not a number")
            if node < 0 or generic not in INFINITE_OK:
                raise ScenarioError(f"{_loc(loc)}: must be a finite number, got {node}")


# Tables that an override replaces whole instead of merging key by key (a context's region mix).
ATOMIC_TABLES = frozenset({"touches"})


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, val in over.items():
        if isinstance(val, Mapping) and isinstance(out.get(key), dict) and key not in ATOMIC_TABLES:
            out[key] = _merge(out[key], val)
        else:
            out[key] = copy.deepcopy(val)
    return out


def _expand_base(data: dict[str, Any], origin: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ScenarioError(f"base: expected a preset name, got {type(base).__name__} ({origin})")
    if base in seen:
        raise ScenarioError(f"base: preset cycle {' -> '.join((*seen, base))}")
    parent = _expand_base(_parse_toml(preset_text(base), f"preset {base}"), f"preset {base}", (*seen, base))
    if "name" not in data:
        data = {**data, "name": parent.get("name", base)}
    return _merge(parent, data)


TEXT_FIELDS = {("kernel", "version")}  # --set keeps these as written


def parse_value(text: str) -> Any:
    """Parse an override value as a TOML value; bare words become strings; 'inf' is infinity."""
    low = text.strip().lower()
    if low in ("inf", "+inf", "infinity"):
        return math.inf
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    except RecursionError:
        raise ScenarioError(f"--set: value nested too deeply (more than {MAX_DEPTH} levels)") from None
    check_depth(value, "--set")
    return value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(f"--set {item}: expected FIELD=VALUE, e.g. platform.link_gbps=25")
        path, _, raw = item.partition("=")
        keys = [k.strip() for k in path.strip().split(".")]
        if not all(keys):
            raise ScenarioError(f"--set {item}: empty field name")
        if len(keys) > MAX_DEPTH:
            raise ScenarioError(f"--set {path}: nested too deeply (more than {MAX_DEPTH} levels)")
        node = out
        for k in keys[:-1]:
            nxt = node.setdefault(k, {})
            if not isinstance(nxt, dict):
                raise ScenarioError(f"{path}: {k} is not a section")
            node = nxt
        # a kernel version is text: "6.10" must not become the number 6.1
        node[keys[-1]] = raw.strip().strip("\"'") if tuple(keys) in TEXT_FIELDS else parse_value(raw)
    return out


def _loc(loc: Sequence[int | str]) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + p)
    return "".join(parts) or "scenario"


def format_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    more = len(exc.errors()) - 1
    tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{_loc(first['loc'])}: {msg}{tail}"


def _check_cross_fields(sc: Scenario) -> None:
    k = sc.kernel
    if k.wq_panic_on_stall and not k.wq_has_panic_on_stall:
        raise ScenarioError(
            f"kernel.wq_panic_on_stall: workqueue.panic_on_stall does not exist in kernel {k.version} "
            "(added about v6.12); leave it 0 or give a newer kernel.version"
        )
    if sc.partition.memory_gib * 2**30 < sc.page_bytes:
        raise ScenarioError(
            f"partition.memory_gib: {sc.partition.memory_gib:g} GiB is smaller than one page "
            f"({sc.platform.page_kib} KiB)"
        )
    n = sc.partition.vcpus
    for i, entry in enumerate(sc.script):
        if entry.cpu >= n:
            raise ScenarioError(
                f"script[{i}].cpu: CPU {entry.cpu} does not exist (partition.vcpus = {n}: CPUs 0-{n - 1})"
            )
    for i, bug in enumerate(sc.bugs):
        for name in ("cpu", "cpu2"):
            cpu = getattr(bug, name)
            if cpu is not None and cpu >= n:
                raise ScenarioError(
                    f"bugs[{i}].{name}: CPU {cpu} does not exist (partition.vcpus = {n}: CPUs 0-{n - 1})"
                )
        if bug.kind == "abba_deadlock" and n < 2:
            raise ScenarioError(f"bugs[{i}].kind: abba_deadlock needs two CPUs (partition.vcpus = {n})")
    problem = exact_memory_problem(sc)
    if problem is not None:
        raise ScenarioError(problem)


def build_scenario(data: Mapping[str, Any]) -> Scenario:
    """Validate a raw scenario mapping; an empty ``description`` is derived from the values."""
    check_depth(data, "scenario")
    check_finite(data)
    data = _expand_workload(dict(data))
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_validation_error(exc)) from None
    _check_cross_fields(sc)
    if not sc.description:
        sc = sc.model_copy(update={"description": describe(sc)})
    return sc


def describe(sc: Scenario) -> str:
    """A one-line description from the scenario's own values (for a scenario that gives none)."""
    p, pf = sc.partition, sc.platform
    parts = [
        f"{p.vcpus:,} vCPUs",
        f"{p.memory_gib:g} GiB",
        f"{pf.link_gbps:g} Gb/s {pf.discipline}"
        + (f" prefetch {pf.prefetch_pages}" if pf.prefetch_pages else ""),
        f"{sc.workload.preset} workload",
        f"kernel {sc.kernel.release}"
        + (f" ({sc.kernel.distro})" if sc.kernel.distro else "")
        + (f" + {', '.join(sc.kernel.backports)}" if sc.kernel.backports else "")
        + f" with {sc.kernel.preset} sysctls",
        f"policy {sc.mitigation.policy}",
        f"{sc.sim.mode} mode",
    ]
    if not sc.migration.enabled:
        parts.insert(0, "not migrating")
    if sc.bugs:
        parts.append(f"{len(sc.bugs)} injected bug{'s' if len(sc.bugs) > 1 else ''}")
    return ", ".join(x for x in parts if x)


def resolve_scenario(
    path: str | Path | None = None,
    preset: str | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """The raw (merged, overridden) scenario mapping, before validation."""
    if path is not None and preset is not None:
        raise ScenarioError("give either a scenario file or --preset, not both")
    if path is not None:
        p = Path(path)
        own = read_toml_file(p, "scenario")
        if not own:
            # A file that sets nothing is the `default` preset (what `lpmsim run` runs without a
            # file), under the file's name: not the schema's bare defaults.
            own = {"base": "default", "description": f"{p.name} sets nothing: the 'default' preset"}
        # The user's scenario is labelled as theirs: the file's name (stem) unless it sets one, and
        # its own description or, when it sets none, one derived from the values (build_scenario).
        label = {"name": own.get("name", p.stem), "description": own.get("description", "")}
        data = {**_expand_base(own, str(p)), **label}
    else:
        name = preset or "default"
        data = _expand_base(_parse_toml(preset_text(name), f"preset {name}"), f"preset {name}")
        data.setdefault("name", name)
    overrides = list(overrides)
    if overrides and not any(o.partition("=")[0].strip() == "description" for o in overrides):
        data["description"] = ""  # overridden values: the base's description no longer fits
    return apply_overrides(data, overrides)


def load_scenario(
    path: str | Path | None = None,
    preset: str | None = None,
    overrides: Iterable[str] = (),
    seed: int | None = None,
) -> Scenario:
    """Load and validate a scenario from a file or a preset (``default`` when neither is given)."""
    data = resolve_scenario(path, preset, overrides)
    if seed is not None:
        data = _merge(data, {"sim": {"seed": seed}})
    return build_scenario(data)

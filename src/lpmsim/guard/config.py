"""``/etc/lpmsim/guard.toml`` -> dataclasses, with one-line errors naming the field (exit code 2).

The file is read defensively (at most ``MAX_BYTES``, nesting bounded before tomllib sees it, any decode
or parse failure is a ConfigError), because the same reader runs at ``post`` and in the restorer, where
a broken file must never stop a restore.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lpmsim.guard import EXIT_USAGE, GuardError
from lpmsim.guard.files import MAX_DEPTH, bracket_depth, depth_exceeds, read_small, why
from lpmsim.guard.policy import GENERATIONS, Policy, PolicyError, parse_policy
from lpmsim.guard.ranges import value_problem
from lpmsim.guard.settings import name_problem

HARD_MAX_S = 86400.0  # no wait, of any kind, may be configured longer than a day

DEFAULT_PANIC_SETTINGS = (
    "kernel.hardlockup_panic",
    "kernel.softlockup_panic",
    "kernel.hung_task_panic",
    "kernel.panic_on_rcu_stall",
    "workqueue.panic_on_stall",
)
DEFAULT_REFUSE_MESSAGE = (
    "lpmsim-guard refused this migration: {settings} is set, so a lockup report during the migration "
    "would panic the partition, and /etc/lpmsim/guard.toml asks to be told first. Clear the setting or "
    "set refuse_if.panic_set = false, then retry."
)

MAX_BYTES = 256 * 1024  # a guard.toml is a few hundred bytes


class ConfigError(GuardError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


@dataclass(frozen=True)
class Completion:
    mode: str = "steal"  # "hold" | "steal"
    hold_s: float = 300.0
    settle_s: float = 30.0
    max_s: float = 1800.0
    poll_s: float = 1.0
    steal_margin_pct: float = 1.0


@dataclass(frozen=True)
class RefuseIf:
    panic_set: bool = False
    panic_settings: tuple[str, ...] = DEFAULT_PANIC_SETTINGS
    message: str = DEFAULT_REFUSE_MESSAGE


@dataclass(frozen=True)
class GuardConfig:
    policy: Policy = field(default_factory=lambda: Policy("none"))
    overrides: dict[str, int] = field(default_factory=dict)
    completion: Completion = field(default_factory=Completion)
    refuse_if: RefuseIf = field(default_factory=RefuseIf)
    kernel_generation: str = "auto"
    require_pseries: bool = True
    skip_missing: bool = False
    window_max_s: float = 14400.0
    lock_timeout_s: float = 30.0
    source: str = "<defaults>"


def _number(where: str, value: Any, *, low: float = 0.0, high: float = HARD_MAX_S) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: must be a number, got {_short(value)}")
    if not low <= float(value) <= high:
        raise ConfigError(f"{where}: must be between {low:g} and {high:g}, got {_short(value)}")
    return float(value)


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: must be true or false, got {_short(value)}")
    return value


def _string(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: must be a string, got {_short(value)}")
    return value


def _table(where: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a table, got {_short(value)}")
    for key in value:
        if key not in allowed:
            raise ConfigError(f"{where}.{_key(key)}: unknown key (known: {', '.join(allowed)})")
    return value


def check_setting_name(where: str, name: str) -> str:
    problem = name_problem(name)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    return name


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``kernel.watchdog_thresh = 30`` unquoted in TOML is a nested table; accept both spellings."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{_key(key)}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


_TOP = (
    "policy",
    "overrides",
    "completion",
    "refuse_if",
    "kernel_generation",
    "require_pseries",
    "skip_missing",
    "window_max_s",
    "lock_timeout_s",
)
_COMPLETION = ("mode", "hold_s", "settle_s", "max_s", "poll_s", "steal_margin_pct")
_REFUSE = ("panic_set", "panic_settings", "message")


def parse_config(data: dict[str, Any], source: str = "<string>") -> GuardConfig:
    """Validate a parsed TOML document; raises ConfigError naming ``file: field: problem``."""
    try:
        return _parse(data, source)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _parse(data: dict[str, Any], source: str) -> GuardConfig:
    _table("(top level)", data, _TOP)
    policy = Policy("none")
    if "policy" in data:
        try:
            policy = parse_policy(_string("policy", data["policy"]))
        except PolicyError as exc:
            raise ConfigError(f"policy: {exc}") from None

    raw_o = data.get("overrides", {})
    if not isinstance(raw_o, dict):
        raise ConfigError(f"overrides: must be a table of setting = integer, got {_short(raw_o)}")
    overrides: dict[str, int] = {}
    for name, value in _flatten(raw_o).items():
        where = f"overrides.{name}"
        check_setting_name(where, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be an integer, got {_short(value)}")
        problem = value_problem(name, value)
        if problem is not None:
            raise ConfigError(f"{where}: {problem}")
        overrides[name] = value

    raw_c = data.get("completion", {})
    if isinstance(raw_c, str):
        raw_c = {"mode": raw_c}
    c = _table("completion", raw_c, _COMPLETION)
    mode = _string("completion.mode", c.get("mode", Completion.mode))
    if mode not in ("hold", "steal"):
        raise ConfigError(f"completion.mode: must be 'hold' or 'steal', got {_short(mode)}")
    completion = Completion(
        mode=mode,
        hold_s=_number("completion.hold_s", c.get("hold_s", Completion.hold_s)),
        settle_s=_number("completion.settle_s", c.get("settle_s", Completion.settle_s)),
        max_s=_number("completion.max_s", c.get("max_s", Completion.max_s), low=0.001),
        poll_s=_number("completion.poll_s", c.get("poll_s", Completion.poll_s), low=0.001, high=60.0),
        steal_margin_pct=_number(
            "completion.steal_margin_pct", c.get("steal_margin_pct", Completion.steal_margin_pct), high=100.0
        ),
    )
    if completion.hold_s > completion.max_s:
        raise ConfigError(
            f"completion.hold_s: {completion.hold_s:g} exceeds completion.max_s {completion.max_s:g} "
            "(the hard maximum)"
        )

    r = _table("refuse_if", data.get("refuse_if", {}), _REFUSE)
    panic_settings: tuple[str, ...] = DEFAULT_PANIC_SETTINGS
    if "panic_settings" in r:
        raw = r["panic_settings"]
        if not isinstance(raw, list) or not raw:
            raise ConfigError(
                f"refuse_if.panic_settings: must be a non-empty list of setting names, got {_short(raw)}"
            )
        panic_settings = tuple(
            check_setting_name(f"refuse_if.panic_settings[{i}]", _string(f"refuse_if.panic_settings[{i}]", s))
            for i, s in enumerate(raw)
        )
    message = _string("refuse_if.message", r.get("message", DEFAULT_REFUSE_MESSAGE))
    _check_message(message)
    refuse = RefuseIf(_bool("refuse_if.panic_set", r.get("panic_set", False)), panic_settings, message)

    gen = _string("kernel_generation", data.get("kernel_generation", "auto"))
    if gen not in ("auto", *GENERATIONS):
        raise ConfigError(
            f"kernel_generation: must be 'auto', {' or '.join(map(repr, GENERATIONS))}, got {_short(gen)}"
        )
    return GuardConfig(
        policy=policy,
        overrides=overrides,
        completion=completion,
        refuse_if=refuse,
        kernel_generation=gen,
        require_pseries=_bool("require_pseries", data.get("require_pseries", True)),
        skip_missing=_bool("skip_missing", data.get("skip_missing", False)),
        window_max_s=_number("window_max_s", data.get("window_max_s", 14400.0), low=1.0),
        lock_timeout_s=_number("lock_timeout_s", data.get("lock_timeout_s", 30.0), high=3600.0),
        source=source,
    )


def _check_message(message: str) -> None:
    """Only a bare ``{settings}`` placeholder (no format spec: ``{settings:>999999999}`` would be a bomb)."""
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(message) if f is not None]
    except ValueError as exc:
        raise ConfigError(
            f"refuse_if.message: only the {{settings}} placeholder is allowed ({exc})"
        ) from None
    if any(f != "settings" or spec or conv for f, spec, conv in fields):
        raise ConfigError(
            "refuse_if.message: only the {settings} placeholder is allowed (no other field, format "
            "spec or conversion; write {{ and }} for literal braces)"
        )


def _key(key: str) -> str:
    """A TOML key as it may be printed on one line (quoted when it holds anything unusual)."""
    return key if key.isascii() and key.isprintable() and len(key) <= 60 else _short(key)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_config(path: Path, *, required: bool) -> GuardConfig:
    """Read ``path``; a missing default config means built-in defaults (policy ``none``).

    Every problem (unreadable, not a regular file, too large, not UTF-8, not TOML, nested too deeply,
    invalid values) is a ConfigError with one line; nothing else escapes.
    """
    try:
        raw = read_small(path, MAX_BYTES)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path}: configuration file not found") from None
        return GuardConfig(source=f"{path} (absent: built-in defaults)")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {why(exc)}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text (byte {exc.start})") from None
    if bracket_depth(text) > MAX_DEPTH:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested deeper than {MAX_DEPTH}")
    try:
        data = tomllib.loads(text)
    except (ValueError, RecursionError, MemoryError) as exc:  # TOMLDecodeError is a ValueError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: not valid TOML: {first}") from None
    if depth_exceeds(data):
        raise ConfigError(f"{path}: tables or keys nested deeper than {MAX_DEPTH}")
    try:
        return parse_config(data, str(path))
    except (RecursionError, MemoryError, OverflowError) as exc:
        raise ConfigError(f"{path}: cannot be used: {type(exc).__name__}") from None

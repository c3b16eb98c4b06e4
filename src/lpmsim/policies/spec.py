"""Policy names, their arguments and options: the registry, and the parser of policy strings.

A policy string lists the mechanisms a partition uses during a migration, joined with ``+``
(``nmi-factor:200+freeze-user:completed``).  Anything not listed is off: ``freeze-user:completed``
alone freezes user tasks and keeps the hard-lockup timeout as it is, so that every policy is scored
against the same ``none`` baseline.  ``kernel`` (the scenario default) is what the modelled kernel
version does by itself: ``nmi-factor:<kernel.nmi_wd_lpm_factor>`` on v6.0 and later, ``none`` before.

Options (``key=value``) belong to exactly one policy each and are checked against the policies of
the string.  This module is pure: the scenario schema, ``lpmsim compare`` and the runner share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lpmsim.guard.policy import FACTOR_MAX
from lpmsim.guard.policy import Policy as GuardPolicy
from lpmsim.guard.policy import PolicyError as GuardPolicyError
from lpmsim.guard.policy import parse_policy as guard_parse


class PolicyError(ValueError):
    """A policy string or option the registry does not accept (the message is one line)."""


@dataclass(frozen=True)
class Option:
    name: str
    kind: type  # float, int or str
    default: float | int | str
    unit: str
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class PolicyInfo:
    """One entry of the registry."""

    name: str
    summary: str
    source: str
    # the LPM hard-lockup-timeout slot: at most one policy of a combination may fill it
    sets_timeout: bool = False
    arg: str | None = None  # name of the ``:ARG`` part, if the policy takes one
    arg_required: bool = False
    options: tuple[Option, ...] = ()


GUARD_COMPLETION = (
    Option(
        "completion",
        str,
        "steal",
        "-",
        "pre-v6.0 kernels: how the restorer waits for completion.",
        ("hold", "steal"),
    ),
    Option(
        "hold_s", float, 300.0, "s", "completion=hold: restore this long after drmgr's post phase.", low=0.0
    ),
    Option(
        "settle_s",
        float,
        30.0,
        "s",
        "completion=steal: restore once stolen time stays at its pre-migration level this long.",
        low=0.0,
    ),
    Option("max_s", float, 1800.0, "s", "Hard maximum of the restorer's wait after post.", low=0.001),
)

REGISTRY: dict[str, PolicyInfo] = {
    p.name: p
    for p in (
        PolicyInfo(
            "kernel",
            "What the modelled kernel version does: nmi-factor:<kernel.nmi_wd_lpm_factor> on v6.0+, none before.",
            "the scenario's kernel section",
            sets_timeout=True,
        ),
        PolicyInfo(
            "none",
            "No mitigation: the hard-lockup timeout stays watchdog_thresh through the migration.",
            "Linux before v6.0 (baseline)",
            sets_timeout=True,
        ),
        PolicyInfo(
            "disable-nmi",
            "Hard-lockup detector stopped just before stop_machine, restarted when the transfer completes.",
            "Laurent Dufour's v1 (June 2022), kernel-facts 8.1",
            sets_timeout=True,
        ),
        PolicyInfo(
            "nmi-factor",
            "The hard-lockup timeout raised by P % from SUSPENDING until COMPLETED (nmi_wd_lpm_factor).",
            "merged in v6.0 (118b1366930c), kernel-facts 7.5",
            sets_timeout=True,
            arg="P",
        ),
        PolicyInfo(
            "inhibit-all",
            "Every lockup detector (hard, soft, RCU stall, workqueue, hung task) off from suspend until completion.",
            "Nathan Lynch's review, kernel-facts 8.2",
        ),
        PolicyInfo(
            "freeze-user",
            "User tasks frozen across the suspend, thawed after the device-tree update or at completion.",
            "Nathan Lynch's review, kernel-facts 8.2",
            arg="dt-update|completed",
            arg_required=True,
        ),
        PolicyInfo(
            "steal-aware",
            "Detectors discount time a vCPU spent stalled in the hypervisor (its dispatch trace log).",
            "new (docs/policies.md)",
        ),
        PolicyInfo(
            "annotate",
            "A stall caused by hypervisor memory access is reported as 'memory access stalled N s in the "
            "hypervisor' instead of as a lockup; real lockups are still reported and can panic.",
            "new: what the review asked the kernel to do (docs/policies.md)",
        ),
        PolicyInfo(
            "adaptive-factor",
            "The hard-lockup timeout follows the longest demand-fault stall observed since resume (its DTL).",
            "new (docs/policies.md)",
            sets_timeout=True,
            options=(
                Option(
                    "faults",
                    float,
                    50.0,
                    "faults",
                    "Headroom: the hard-lockup timeout leaves room for this many demand faults in a row at the "
                    "longest hypervisor stall seen since resume.",
                    low=0.0,
                ),
                Option(
                    "max_pct",
                    int,
                    1000,
                    "%",
                    "Largest factor the adaptation may set.",
                    low=0,
                    high=FACTOR_MAX,
                ),
                Option("period_s", float, 1.0, "s", "How often the factor is re-derived.", low=0.01),
            ),
        ),
        PolicyInfo(
            "guard",
            "lpmsim guard, the drmgr hook: applies POLICY through sysctls at drmgr's pre phase and restores "
            "it at post (v6.0+: after completion; older kernels: after resume plus the completion wait).",
            "lpmsim guard (issue 7), docs/guard.md",
            arg="none|disable-nmi|nmi-factor:P|inhibit-all",
            arg_required=True,
            options=GUARD_COMPLETION,
        ),
    )
}

FREEZE_ARGS = ("dt-update", "completed")
GUARD_POLICIES = ("none", "disable-nmi", "nmi-factor", "inhibit-all")
DEFAULT_FACTOR = 200


@dataclass(frozen=True)
class PolicyPart:
    """One mechanism of a policy string: its registry name and argument."""

    name: str
    arg: str | None = None

    def __str__(self) -> str:
        return self.name if self.arg is None else f"{self.name}:{self.arg}"

    @property
    def factor(self) -> int:
        """nmi-factor's P (default 200); guard's nmi-factor:P."""
        a = self.arg
        if self.name == "guard" and a is not None and a.startswith("nmi-factor"):
            a = a.partition(":")[2] or None
        return DEFAULT_FACTOR if a is None else int(a)


@dataclass(frozen=True)
class PolicySpec:
    """A parsed policy string with its options (validated and with defaults filled in)."""

    parts: tuple[PolicyPart, ...]
    options: Mapping[str, float | int | str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "+".join(str(p) for p in self.parts)

    def has(self, name: str) -> bool:
        return any(p.name == name for p in self.parts)

    def part(self, name: str) -> PolicyPart | None:
        for p in self.parts:
            if p.name == name:
                return p
        return None

    def option(self, name: str) -> float | int | str:
        return self.options[name]


def _guard_parse(text: str, where: str) -> GuardPolicy:
    """The guard's own parser (one grammar for ``nmi-factor:P`` in both tools)."""
    try:
        return guard_parse(text)
    except GuardPolicyError as exc:
        raise PolicyError(f"{where}{exc}") from None  # where: "" or "guard: "


def _part(text: str) -> PolicyPart:
    name, sep, arg = text.strip().partition(":")
    info = REGISTRY.get(name)
    if info is None:
        raise PolicyError(f"unknown policy {name!r}; expected one of: {', '.join(policy_names())}")
    if not sep:
        if info.arg_required:
            raise PolicyError(f"policy {name!r} needs an argument: {name}:{info.arg}")
        return PolicyPart(name)
    if info.arg is None:
        raise PolicyError(f"policy {name!r} takes no argument, got {text.strip()!r}")
    if name == "nmi-factor":
        return PolicyPart(name, str(_guard_parse(f"nmi-factor:{arg}", "").factor))
    if name == "freeze-user":
        if arg not in FREEZE_ARGS:
            raise PolicyError(f"freeze-user:{arg}: expected freeze-user:dt-update or freeze-user:completed")
        return PolicyPart(name, arg)
    # guard:<policy>
    inner, isep, _ = arg.partition(":")
    if inner not in GUARD_POLICIES:
        raise PolicyError(
            f"guard:{arg}: the guard applies one of: none, disable-nmi, nmi-factor:P, inhibit-all"
        )
    if inner == "nmi-factor" and not isep:
        return PolicyPart(name, "nmi-factor")  # P defaults to the kernel's 200
    return PolicyPart(name, str(_guard_parse(arg, "guard: ")))


def _option_value(opt: Option, value: object, where: str) -> float | int | str:
    if opt.kind is str:
        if not isinstance(value, str) or (opt.choices and value not in opt.choices):
            raise PolicyError(f"{where}: expected one of {', '.join(opt.choices)}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"{where}: expected a number ({opt.unit}), got {value!r}")
    if opt.kind is int and (not float(value).is_integer()):
        raise PolicyError(f"{where}: expected a whole number, got {value!r}")
    v: float | int = int(value) if opt.kind is int else float(value)
    if v != v or (opt.low is not None and v < opt.low) or (opt.high is not None and v > opt.high):
        lo = "-inf" if opt.low is None else f"{opt.low:g}"
        hi = "inf" if opt.high is None else f"{opt.high:g}"
        raise PolicyError(f"{where}: {value!r} is outside [{lo}, {hi}]")
    return v


def parse_policy(text: str, options: Mapping[str, object] | None = None, where: str = "") -> PolicySpec:
    """Parse ``text`` (``a+b:arg+...``) and check ``options`` against its policies.

    ``where`` prefixes an option's name in error messages (e.g. ``"mitigation.options."``)."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyError(
            "empty policy; expected e.g. none, nmi-factor:200 or freeze-user:completed+nmi-factor:200"
        )
    parts = tuple(_part(t) for t in text.split("+"))
    seen: set[str] = set()
    timeout: list[str] = []
    for p in parts:
        if p.name in seen:
            raise PolicyError(f"policy {p.name!r} is given twice in {text!r}")
        seen.add(p.name)
        if REGISTRY[p.name].sets_timeout:
            timeout.append(str(p))
    if len(timeout) > 1:
        raise PolicyError(
            f"{' and '.join(timeout)} both set the hard-lockup timeout during LPM; combine at most one of them"
        )
    if "guard" in seen and len(parts) > 1:
        raise PolicyError("guard:<policy> models the drmgr hook on its own; combine it with nothing else")
    known = {o.name: o for p in parts for o in REGISTRY[p.name].options}
    out: dict[str, float | int | str] = {name: o.default for name, o in known.items()}
    for key, value in (options or {}).items():
        opt = known.get(key)
        if opt is None:
            valid = ", ".join(sorted(known)) or "none"
            raise PolicyError(f"{where}{key}: unknown option for policy {text!r} (its options: {valid})")
        out[key] = _option_value(opt, value, f"{where}{key}")
    return PolicySpec(parts, out)


def policy_names() -> list[str]:
    """The registry's names as users write them."""
    out = []
    for info in REGISTRY.values():
        out.append(info.name if info.arg is None else f"{info.name}:{info.arg}")
    return out

"""The candidates: what this partition's kernel can actually be told to do around a migration.

An administrator has three levers, and nothing else (the simulator's other policies — steal-aware
detectors, annotate, adaptive factor, freezing user tasks — need kernel changes):

* nothing (``none``): the kernel does what its version does by itself (v6.0+: the hard-lockup
  timeout raised by ``kernel.nmi_wd_lpm_factor`` % from SUSPENDING to COMPLETED);
* a sysctl, on kernels that have ``kernel.nmi_wd_lpm_factor`` (v6.0+, or backported): a larger
  factor (``sysctl-factor-P``; the factor only acts during a migration, so a permanent setting
  is the same as a window);
* an ``lpmsim guard`` policy applied from drmgr's ``pre`` to its ``post`` phase: ``nmi-factor:P``
  on kernels without the sysctl (emulated through ``kernel.watchdog_thresh``, docs/guard.md),
  ``disable-nmi``, ``inhibit-all``, and — when the partition has a ``*_panic`` setting on — the
  same panic settings cleared for the window (``guard-no-panic``: policy ``none`` with overrides).

Each candidate is simulated with the matching policy (``guard:<policy>`` for the hook, which
models when drmgr runs it) and says how it is deployed (``Deployment``).  Candidates are ordered by
how much lockup detection they give up; the order decides between candidates equally safe
(``lpmsim.advise.recommend``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from lpmsim.advise.facts import PANIC_SETTINGS, SETTINGS, Facts
from lpmsim.guard.policy import INHIBIT_ALL, WATCHDOG_THRESH_MAX

SYSCTL_FACTORS = (400, 1000)
"""Factors tried on kernels with ``nmi_wd_lpm_factor`` (above the kernel's default 200): 10 s
becomes 50 s, then 110 s (SMP checker 75 s, 165 s)."""
GUARD_FACTORS = (200, 500)
"""Factors the guard emulates on older kernels: ``watchdog_thresh`` 10 -> 30, 60 (the sysctl's maximum)."""

DeployKind = Literal["nothing", "sysctl", "guard"]


@dataclass(frozen=True)
class Deployment:
    """How a candidate is put in place: nothing, sysctl lines, or an ``lpmsim guard`` configuration."""

    kind: DeployKind
    guard_policy: str | None = None
    guard_overrides: dict[str, int] = field(default_factory=dict)
    sysctl: dict[str, int] = field(default_factory=dict)
    skip_missing: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "guard_policy": self.guard_policy,
            "guard_overrides": dict(self.guard_overrides),
            "sysctl": dict(self.sysctl),
            "skip_missing": self.skip_missing,
        }


@dataclass(frozen=True)
class Candidate:
    """One option: its name, the simulator's policy and scenario fields for it, and its deployment."""

    name: str
    summary: str
    policy: str
    overrides: tuple[str, ...]
    deploy: Deployment

    @property
    def variant(self) -> str:
        """The candidate as a ``--variant`` of ``lpmsim compare``."""
        return ",".join([f"{self.name}={self.policy}", *self.overrides])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "policy": self.policy,
            "overrides": list(self.overrides),
            "variant": self.variant,
            "deploy": self.deploy.to_dict(),
        }


def _panics_on(facts: Facts) -> dict[str, int]:
    return {name: 0 for name in PANIC_SETTINGS if facts.setting(name, 0) != 0}


def candidates_for(facts: Facts) -> list[Candidate]:
    """The candidates for ``facts``, least intrusive first.  Options that would change nothing on
    this kernel (a factor not above the current one, disabling a detector that is off) are left out."""
    thresh = facts.setting("kernel.watchdog_thresh", 10)
    nmi_on = facts.setting("kernel.nmi_watchdog", 1) != 0 and thresh > 0
    out = [
        Candidate(
            "none",
            "leave the partition as it is"
            + (
                f" (the kernel raises the hard-lockup timeout by nmi_wd_lpm_factor = "
                f"{facts.setting('kernel.nmi_wd_lpm_factor', 200)} % itself)"
                if facts.has_lpm_factor
                else " (no nmi_wd_lpm_factor on this kernel)"
            ),
            "kernel",
            (),
            Deployment("nothing"),
        )
    ]
    if nmi_on and facts.has_lpm_factor:
        current = facts.setting("kernel.nmi_wd_lpm_factor", 200)
        for p in SYSCTL_FACTORS:
            if p > current:
                out.append(
                    Candidate(
                        f"sysctl-factor-{p}",
                        f"kernel.nmi_wd_lpm_factor = {p}: hard-lockup timeout {thresh + p * thresh // 100} s "
                        "during the migration",
                        "kernel",
                        (f"kernel.nmi_wd_lpm_factor={p}",),
                        Deployment("sysctl", sysctl={"kernel.nmi_wd_lpm_factor": p}),
                    )
                )
    elif nmi_on:
        seen: set[int] = set()
        for p in GUARD_FACTORS:
            value = min(thresh + p * thresh // 100, WATCHDOG_THRESH_MAX)
            if value <= thresh or value in seen:
                continue
            seen.add(value)
            out.append(
                Candidate(
                    f"guard-factor-{p}",
                    f"lpmsim guard nmi-factor:{p}: kernel.watchdog_thresh {thresh} -> {value} for the window "
                    f"(soft-lockup threshold {2 * value} s too)",
                    f"guard:nmi-factor:{p}",
                    (),
                    Deployment("guard", guard_policy=f"nmi-factor:{p}"),
                )
            )
    panics = _panics_on(facts)
    if panics:
        fields = tuple(f"kernel.{SETTINGS[n]}=0" for n in panics)
        out.append(
            Candidate(
                "guard-no-panic",
                "lpmsim guard clears " + ", ".join(panics) + " for the window (reports still printed)",
                "kernel",
                fields,
                Deployment("guard", guard_policy="none", guard_overrides=panics),
            )
        )
    if nmi_on:
        out.append(
            Candidate(
                "guard-disable-nmi",
                "lpmsim guard disable-nmi: hard-lockup detector off for the window",
                "guard:disable-nmi",
                (),
                Deployment("guard", guard_policy="disable-nmi"),
            )
        )
    missing = [n for n in INHIBIT_ALL if facts.settings and n not in facts.settings]
    out.append(
        Candidate(
            "guard-inhibit-all",
            "lpmsim guard inhibit-all: every lockup detector off for the window",
            "guard:inhibit-all",
            (),
            Deployment("guard", guard_policy="inhibit-all", skip_missing=bool(missing)),
        )
    )
    return out

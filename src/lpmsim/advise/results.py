"""Typed results of ``lpmsim advise``; ``to_dict()`` gives the stable keys of ``--json`` (docs/advise.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lpmsim import __version__
from lpmsim.advise.candidates import Candidate
from lpmsim.advise.facts import Facts
from lpmsim.sweeps.stats import Proportion


def proportion(p: Proportion) -> dict[str, Any]:
    """``{"k", "n", "p", "ci95_low", "ci95_high"}``, as ``compare.json`` writes a proportion."""
    return p.as_dict()


@dataclass(frozen=True)
class Detection:
    """How an injected real lockup (a CPU spinning with interrupts hard-disabled) was reported."""

    runs: int
    detected: Proportion  # bugs detected of bugs injected (a bug may not start before the horizon)
    delay_median_s: float | None
    delays_s: tuple[float, ...] = ()
    went_down: int = 0  # runs in which the partition crashed or panicked (a missed bug died with it)

    @property
    def missed(self) -> int:
        return self.detected.n - self.detected.k

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "detected": proportion(self.detected),
            "missed": self.missed,
            "delay_median_s": self.delay_median_s,
            "delays_s": list(self.delays_s),
            "went_down": self.went_down,
        }


@dataclass(frozen=True)
class Scored:
    """One candidate's figures from the compact comparison."""

    name: str
    runs: int
    failed: int
    p_crash: Proportion
    p_panic: Proportion
    p_down: Proportion  # crash or panic: the partition goes down either way
    reports_mean: Mapping[str, float | None]
    nmi_ipi_mean: Mapping[str, float | None]
    left_race_after: int | None = None
    detection: Detection | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "runs": self.runs,
            "failed": self.failed,
            "p_crash": proportion(self.p_crash),
            "p_panic": proportion(self.p_panic),
            "p_down": proportion(self.p_down),
            "reports_mean": dict(self.reports_mean),
            "nmi_ipi_mean": dict(self.nmi_ipi_mean),
            "left_race_after": self.left_race_after,
            "detection": None if self.detection is None else self.detection.to_dict(),
        }


@dataclass(frozen=True)
class Race:
    """A compact comparison at one link rate: every candidate's figures, in candidate order."""

    link_gbps: float
    resume_s: float
    scored: tuple[Scored, ...]

    def get(self, name: str) -> Scored:
        return next(s for s in self.scored if s.name == name)


@dataclass(frozen=True)
class Choice:
    """The recommendation of one race and why."""

    name: str
    reason: str
    separated_from: tuple[str, ...]  # candidates significantly riskier than it
    not_separated: tuple[str, ...]  # less intrusive candidates the runs could not tell apart from it

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reason": self.reason,
            "significantly_riskier": list(self.separated_from),
            "not_separated": list(self.not_separated),
        }


@dataclass(frozen=True)
class SensitivityPoint:
    """The recommendation under another assumption (a link rate, or a corner of a fitted range)."""

    label: str
    overrides: Mapping[str, float]
    race: Race
    choice: Choice

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "overrides": dict(self.overrides),
            "recommendation": self.choice.name,
            "p_down": {s.name: proportion(s.p_down) for s in self.race.scored},
        }


@dataclass(frozen=True)
class ParameterRange:
    """A fitted platform figure: its prior range and the range of the accepted settings."""

    field: str
    prior: tuple[float, float]
    true_or_given: float | None
    accepted: tuple[float, ...]

    @property
    def low(self) -> float | None:
        return min(self.accepted) if self.accepted else None

    @property
    def high(self) -> float | None:
        return max(self.accepted) if self.accepted else None

    @property
    def median(self) -> float | None:
        if not self.accepted:
            return None
        xs = sorted(self.accepted)
        n = len(xs)
        return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "prior": list(self.prior),
            "accepted_low": self.low,
            "accepted_high": self.high,
            "accepted_median": self.median,
            "accepted": list(self.accepted),
        }


@dataclass(frozen=True)
class Fit:
    """Approximate Bayesian computation of the platform figures from a log (``--from-log``)."""

    log: str
    observed: Mapping[str, Any]
    tolerance: float
    runs: int
    accepted: int
    parameters: tuple[ParameterRange, ...]
    failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "observed": dict(self.observed),
            "tolerance": self.tolerance,
            "runs": self.runs,
            "accepted": self.accepted,
            "failed": self.failed,
            "parameters": [p.to_dict() for p in self.parameters],
        }


@dataclass(frozen=True)
class Advice:
    """Everything ``lpmsim advise`` found: facts, assumptions, every candidate's figures, the
    recommendation with what to deploy, the sensitivity, and the fit when advising from a log."""

    facts: Facts
    assumptions: Mapping[str, Any]
    candidates: tuple[Candidate, ...]
    race: Race
    choice: Choice
    deploy_text: str
    guard_toml: str | None
    sysctl: tuple[str, ...]
    sensitivity: tuple[SensitivityPoint, ...] = ()
    fit: Fit | None = None
    execution: Mapping[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def recommendation(self) -> str:
        return self.choice.name

    @property
    def robust(self) -> bool:
        """The recommendation is the same under every sensitivity point."""
        return all(p.choice.name == self.choice.name for p in self.sensitivity)

    def to_dict(self, command: list[str] | None = None) -> dict[str, Any]:
        by_name = {c.name: c for c in self.candidates}
        return {
            "lpmsim_version": __version__,
            "command": command,
            "facts": self.facts.to_dict(),
            "assumptions": dict(self.assumptions),
            "recommendation": {
                **self.choice.to_dict(),
                "deploy": by_name[self.choice.name].deploy.to_dict(),
                "guard_toml": self.guard_toml,
                "sysctl": list(self.sysctl),
                "robust": self.robust,
            },
            "candidates": [{**by_name[s.name].to_dict(), **s.to_dict()} for s in self.race.scored],
            "resume_s": self.race.resume_s,
            "sensitivity": [p.to_dict() for p in self.sensitivity],
            "fit": None if self.fit is None else self.fit.to_dict(),
            "execution": dict(self.execution),
            "complete": not self.interrupted,
        }

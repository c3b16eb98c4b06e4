"""``lpmsim.advise``: which settings or ``lpmsim guard`` policy to use on a partition about to be
migrated, as ``lpmsim advise`` prints it (docs/advise.md).

It assembles ``lpmsim.advise``: the facts (options, a scenario, or ``/proc`` and ``/sys``), the
candidates, the compact comparison and its sensitivity, and, from a log, the fit of the platform.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lpmsim.advise import facts as facts_mod
from lpmsim.advise.compact import Budget
from lpmsim.advise.compact import Progress as RunProgress
from lpmsim.advise.facts import Facts, FactsError
from lpmsim.advise.fit import LINK, corners, default_priors, fit, fitted_overrides, parse_prior
from lpmsim.advise.pattern import NoResume, pattern
from lpmsim.advise.recommend import NoResults, Point
from lpmsim.advise.recommend import advise as run_advice
from lpmsim.advise.results import Advice, Fit
from lpmsim.api.source import Source, overrides, raw_scenario
from lpmsim.config.loader import ScenarioError, apply_overrides, build_scenario, resolve_scenario
from lpmsim.sweeps.executors import LocalExecutor
from lpmsim.sweeps.plan import point_data
from lpmsim.sweeps.variants import VariantError
from lpmsim.triage.analyze import triage_file
from lpmsim.triage.reader import LogOpenError

__all__ = ["Advice", "AdviseError", "advise"]

FitProgress = Callable[[int, int], None]


class AdviseError(ValueError):
    """Advice refused (``code`` 2: bad or missing input, nothing ran) or impossible (``code`` 1: the
    fit accepted nothing).  The message is one line saying what to pass."""

    def __init__(self, message: str, code: int = 2, fit: Fit | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.fit = fit  # the fit that accepted nothing: computed, so shown


def _base(
    scenario: Source | None, sets: Mapping[str, Any] | Sequence[str] | None
) -> tuple[dict[str, Any], Facts | None]:
    """The raw scenario the advice starts from, and the facts it describes (None: no scenario given)."""
    texts = overrides(sets) if sets is None or isinstance(sets, Mapping) else list(sets)
    if scenario is None:
        return resolve_scenario(preset="default", overrides=texts), None
    raw = apply_overrides(raw_scenario(scenario), texts)
    return raw, facts_mod.from_scenario(build_scenario(raw).model_dump(mode="json"), raw)


def _facts(
    base: Facts | None,
    from_partition: str | Path | None,
    vcpus: int | None,
    memory_gib: float | None,
    link_gbps: float | None,
    kernel: str | None,
    distro: str | None,
    workload: str | None,
) -> Facts:
    if from_partition is not None:
        part = facts_mod.from_partition(Path(from_partition))
        if base is not None:  # the scenario describes what /proc cannot: the link, the workload
            part = replace(part, link_gbps=base.link_gbps, workload=base.workload)
        base = part
    return facts_mod.given(vcpus, memory_gib, link_gbps, kernel, distro, workload, base)


def advise(
    scenario: Source | None = None,
    *,
    vcpus: int | None = None,
    memory_gib: float | None = None,
    link_gbps: float | None = None,
    kernel: str | None = None,
    distro: str | None = None,
    workload: str | None = None,
    set: Mapping[str, Any] | Sequence[str] | None = None,
    from_partition: str | Path | None = None,
    from_log: str | Path | None = None,
    runs: int = 12,
    batch: int = 4,
    horizon_s: float = 120.0,
    detection_runs: int = 3,
    sensitivity_runs: int | None = None,
    seed: int = 1,
    jobs: int | None = None,
    fit_runs: int = 48,
    tolerance: float = 0.25,
    priors: Sequence[str] = (),
    progress: RunProgress | None = None,
    fit_progress: FitProgress | None = None,
) -> Advice:
    """Advise for a partition, as ``lpmsim advise`` does.

    The facts come from ``scenario`` (a preset name, a scenario file or a ``Scenario``; ``set``
    overrides its fields, as a mapping or ``FIELD=VALUE`` strings), from ``from_partition`` (a root
    whose ``proc`` and ``sys`` are read), and from the keyword facts, which win.  ``from_log`` fits the
    platform to that console log first (``fit_runs`` samples, ``tolerance``, ``priors`` as
    ``FIELD=LO:HI``).  Raises ``AdviseError`` (one line, ``code`` 2) for missing or invalid facts
    before anything runs, and (``code`` 1) when the fit accepts nothing."""
    try:
        raw, base = _base(scenario, set)
        facts = _facts(base, from_partition, vcpus, memory_gib, link_gbps, kernel, distro, workload)
        budget = Budget(runs=runs, batch=batch, horizon_s=horizon_s, detection_runs=detection_runs, seed=seed)
        data = facts.apply(raw)
        build_scenario(data)  # the facts must make a valid scenario (e.g. --vcpus within 1..8192)
        if from_log is None:
            ex = LocalExecutor(jobs)
            try:
                return run_advice(raw, facts, budget, ex, progress, sensitivity_runs=sensitivity_runs)
            finally:
                ex.close()
        return _from_log(
            raw,
            facts,
            Path(from_log),
            budget,
            jobs,
            fit_runs,
            tolerance,
            priors,
            sensitivity_runs,
            progress,
            fit_progress,
        )
    except (FactsError, ScenarioError, VariantError) as exc:
        raise AdviseError(str(exc)) from None
    except NoResults as exc:
        raise AdviseError(str(exc), 1) from None


def _from_log(
    raw: dict[str, Any],
    facts: Facts,
    log: Path,
    budget: Budget,
    jobs: int | None,
    fit_runs: int,
    tolerance: float,
    prior_texts: Sequence[str],
    sensitivity_runs: int | None,
    progress: RunProgress | None,
    fit_progress: FitProgress | None,
) -> Advice:
    priors = {p.field: p for p in default_priors(facts.link_gbps)}
    try:
        for text in prior_texts:
            p = parse_prior(text, list(priors.values()))
            priors[p.field] = p
    except ValueError as exc:
        raise AdviseError(str(exc)) from None
    try:
        observed = pattern(triage_file(str(log)))
    except LogOpenError as exc:
        raise AdviseError(f"--from-log {log}: {exc}") from None
    except NoResume as exc:
        raise AdviseError(f"--from-log {log}: {exc}") from None
    workers = jobs if jobs is not None else LocalExecutor().workers
    f = fit(
        facts.apply(raw),
        observed,
        str(log),
        list(priors.values()),
        fit_runs,
        tolerance,
        budget.seed,
        workers,
        fit_progress,
    )
    if f.accepted == 0:
        raise AdviseError(
            f"--from-log {log}: no simulated run reproduced the log's pattern within tolerance {tolerance:g} "
            f"(0 of {f.runs} accepted, {f.failed} failed): raise --fit-runs or --tolerance, or widen a --prior",
            1,
            f,
        )
    fitted = fitted_overrides(f)
    fitted_facts = replace(facts, link_gbps=fitted[LINK], source=f"{facts.source}, fitted to {log}")
    rest = tuple((k, v) for k, v in fitted.items() if k != LINK)
    data = point_data(raw, rest)
    points = [Point(label, ov) for label, ov in corners(f)]
    ex = LocalExecutor(jobs)
    try:
        return run_advice(
            data, fitted_facts, budget, ex, progress, points=points, sensitivity_runs=sensitivity_runs, fit=f
        )
    finally:
        ex.close()

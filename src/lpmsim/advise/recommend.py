"""The recommendation: which candidate, and how sensitive that choice is to the link rate.

The rule (``choose``): the risk of a candidate is P(down), the chance that the partition crashes
(an unrecoverable system reset, an NMI IPI not answered) or panics (a ``*_panic`` setting) within
the horizon after resume.  Among the candidates whose observed P(down) is the lowest, the least
intrusive one is recommended (candidates are ordered by how much lockup detection they give up:
``lpmsim.advise.candidates``).  A candidate is *significantly riskier* when its 95 % Wilson
interval lies wholly above the recommendation's; less intrusive candidates that are not are listed
as *not separated*: more runs (``--runs``) would be needed to tell them apart.

``advise`` runs the compact comparison (``lpmsim.advise.compact``) under the facts, then again at
half and double the link rate (or at the corners of a fitted range), and writes the deployment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lpmsim.advise.candidates import Candidate, candidates_for
from lpmsim.advise.compact import BUG_KIND, Budget, Progress, Tally, bug_window, race
from lpmsim.advise.deploy import guard_toml, instructions, sysctl_lines
from lpmsim.advise.facts import Facts
from lpmsim.advise.results import Advice, Choice, Fit, Race, SensitivityPoint
from lpmsim.sweeps.executors import Executor
from lpmsim.sweeps.plan import point_data

LINK_FACTORS = (0.5, 2.0)


class NoResults(ValueError):
    """No candidate has a finished run (every run failed): nothing to recommend."""


def _cpu_s() -> float:
    """CPU time of this process and of its finished children (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def choose(r: Race) -> Choice:
    """The least intrusive of the candidates with the lowest observed P(down) (see the module doc)."""
    scored = [s for s in r.scored if s.p_down.n > 0]
    if not scored:
        raise NoResults("no candidate has a finished run (every run failed): nothing to recommend")
    low = min(s.p_down.p or 0.0 for s in scored)
    best = next(s for s in scored if (s.p_down.p or 0.0) == low)
    ci = best.p_down.interval
    assert ci is not None
    riskier, unclear = [], []
    for s in r.scored:
        if s.name == best.name or s.p_down.n == 0:
            continue
        other = s.p_down.interval
        assert other is not None
        if other[0] > ci[1]:
            riskier.append(s.name)
        elif r.scored.index(s) < r.scored.index(best):
            unclear.append(s.name)
    k, n = best.p_down.k, best.p_down.n
    reason = (
        f"lowest observed P(down) ({k} of {n} runs)"
        + (f", least intrusive of {_count(scored, low)} equally low" if _count(scored, low) > 1 else "")
        + (f"; significantly safer than {', '.join(riskier)}" if riskier else "")
        + (f"; not separated from {', '.join(unclear)} (more --runs needed)" if unclear else "")
    )
    return Choice(best.name, reason, tuple(riskier), tuple(unclear))


def _count(scored: Sequence[Any], low: float) -> int:
    return sum(1 for s in scored if (s.p_down.p or 0.0) == low)


@dataclass(frozen=True)
class Point:
    """A sensitivity point: a label and the scenario fields it changes."""

    label: str
    overrides: Mapping[str, float] = field(default_factory=dict)


def link_points(facts: Facts) -> list[Point]:
    return [
        Point(f"{f:g}x link ({facts.link_gbps * f:g} Gb/s)", {"platform.link_gbps": facts.link_gbps * f})
        for f in LINK_FACTORS
    ]


def _set(data: Mapping[str, Any], overrides: Mapping[str, float]) -> dict[str, Any]:
    return point_data(data, tuple(overrides.items()))


def advise(
    data: Mapping[str, Any],
    facts: Facts,
    budget: Budget,
    executor: Executor,
    progress: Progress | None = None,
    points: Sequence[Point] | None = None,
    sensitivity_runs: int | None = None,
    fit: Fit | None = None,
    candidates: Sequence[Candidate] | None = None,
) -> Advice:
    """Advise for ``facts`` on top of ``data`` (a raw scenario mapping, e.g. a preset's: the
    facts are applied to it).  ``points`` default to half and double the link rate."""
    t0 = time.perf_counter()
    c0 = _cpu_s()
    cands = list(candidates) if candidates is not None else candidates_for(facts)
    base = facts.apply(data)
    tally = Tally(progress)
    main, interrupted = race(base, cands, budget, executor, tally)
    if interrupted and not any(s.p_down.n for s in main.scored):
        raise KeyboardInterrupt  # nothing finished: nothing to print
    choice = choose(main)
    sens: list[SensitivityPoint] = []
    s_budget = Budget(
        runs=sensitivity_runs if sensitivity_runs is not None else max(budget.batch, budget.runs // 2),
        batch=budget.batch,
        horizon_s=budget.horizon_s,
        detection_runs=0,
        seed=budget.seed,
    )
    for p in points if points is not None else link_points(facts):
        if interrupted or s_budget.runs < 1:
            break
        r, interrupted = race(_set(base, p.overrides), cands, s_budget, executor, tally, detect=False)
        if any(s.p_down.n for s in r.scored):
            sens.append(SensitivityPoint(p.label, dict(p.overrides), r, choose(r)))
    chosen = next(c for c in cands if c.name == choice.name)
    assumptions = {
        "link_gbps": facts.link_gbps,
        "workload": facts.workload,
        "kernel_version": facts.kernel_version,
        "horizon_after_resume_s": budget.horizon_s,
        "risk": "P(down) = P(crash or panic) within horizon_after_resume_s of the resume",
        "injected_lockup": {
            "kind": BUG_KIND,
            "window_after_resume_s": list(bug_window(budget.horizon_s)),
            "runs": budget.detection_runs,
        },
        "budget": budget.to_dict(),
        "sensitivity_runs": s_budget.runs,
        "mode": str((base.get("sim") or {}).get("mode", "exact")),
    }
    return Advice(
        facts=facts,
        assumptions=assumptions,
        candidates=tuple(cands),
        race=main,
        choice=choice,
        deploy_text=instructions(chosen, facts),
        guard_toml=guard_toml(chosen, facts),
        sysctl=tuple(sysctl_lines(chosen)),
        sensitivity=tuple(sens),
        fit=fit,
        execution={
            "jobs": executor.workers,
            "wall_s": round(time.perf_counter() - t0, 3),
            "cpu_s": round(_cpu_s() - c0, 3),
            "runs": sum(s.runs + (s.detection.runs if s.detection else 0) for s in main.scored)
            + sum(s.runs for p in sens for s in p.race.scored),
        },
        interrupted=interrupted,
    )

"""The compact comparison: every candidate over the same seeds, cut to what the advice needs.

Three economies over a plain ``lpmsim compare``:

* **Horizon after resume.**  A run stops ``horizon_s`` simulated seconds after the partition
  resumes on the destination (``sim.max_time_s`` = the end of pre-copy + the suspension + the
  blackout + ``horizon_s``), not when a post-copy of hours completes.  The end of pre-copy is
  computed, not simulated: ``lpmsim.hypervisor.precopy.run_precopy`` with the run's own streams, as
  the migration does.  What fires after the horizon is not counted, so P(crash) is that of the
  first ``horizon_s`` after resume — where the RTAS calls and the fault storm are.
* **Seeds in rounds, stopping early when intervals separate** (racing): candidates run ``batch``
  seeds at a time, all on the same seeds; after each round a candidate whose 95 % Wilson interval of
  P(down) lies wholly above the safest candidate's leaves the race (its figures stay, on fewer
  runs); the race ends when one candidate is left or every remaining one has ``runs`` seeds.
* **Detection runs** are few (``detection_runs`` seeds per candidate): they measure how long an
  injected real lockup goes unreported, which varies much less from seed to seed than a crash does.

The runs go through ``lpmsim.sweeps`` (plans, executors, rows, aggregates), so each run is the run
``lpmsim compare`` would make of the same variant and seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lpmsim.advise.candidates import Candidate
from lpmsim.advise.results import Detection, Race, Scored
from lpmsim.bugs.inject import detection_horizon
from lpmsim.config.loader import build_scenario
from lpmsim.config.scenario import Scenario
from lpmsim.engine.rng import RngStreams
from lpmsim.hypervisor.layout import Layout
from lpmsim.hypervisor.precopy import run_precopy
from lpmsim.sweeps.aggregate import aggregate_variant
from lpmsim.sweeps.compare import execute
from lpmsim.sweeps.executors import Executor
from lpmsim.sweeps.plan import build_plan, seeds_for
from lpmsim.sweeps.rows import Row, RunResult, RunSpec
from lpmsim.sweeps.stats import Proportion

SUSPEND_MARGIN_S = 2.0
"""From the end of pre-copy to the guest's suspension: the mobility flow polls the VASI state with
``ssleep(1)`` (101 jiffies at HZ=100 with the timer wheel's rounding: about 1.04 s) and then joins
(stop_machine, H_JOIN); 2 s covers it."""

MAX_TIME_S = 1e7  # the schema's largest sim.max_time_s

BUG_KIND = "irqs_hard_off_spin"
BUG_WINDOW_S = (5.0, 30.0)

Progress = Callable[[RunResult, int, int], None]


@dataclass(frozen=True)
class Budget:
    """How much to run: seeds per candidate (at most ``runs``, in rounds of ``batch``), the
    horizon after resume, detection runs per candidate, and the first seed."""

    runs: int = 12
    batch: int = 4
    horizon_s: float = 120.0
    detection_runs: int = 3
    seed: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "batch": self.batch,
            "horizon_s": self.horizon_s,
            "detection_runs": self.detection_runs,
            "seed": self.seed,
        }


def resume_s(sc: Scenario) -> float:
    """When ``sc`` resumes on the destination, within ``SUSPEND_MARGIN_S`` (pre-copy is computed as
    the migration computes it, with the same named streams of its seed)."""
    streams = RngStreams(sc.sim.seed)
    layout = Layout(sc, streams["layout"])
    pre = run_precopy(sc, layout, streams["precopy"])
    return pre.duration_s + SUSPEND_MARGIN_S + sc.migration.blackout_s


def with_horizon(data: Mapping[str, Any], horizon_s: float, seed: int) -> tuple[dict[str, Any], float]:
    """``data`` with ``sim.max_time_s`` cut to ``horizon_s`` after resume (for ``seed``'s pre-copy);
    also returns the resume time."""
    sim = dict(data.get("sim") or {})
    sc = build_scenario({**data, "sim": {**sim, "seed": seed}})
    t_resume = resume_s(sc)
    # the scenario's own max_time_s bounds a whole migration; here the resume sets the end
    limit = min(MAX_TIME_S, t_resume + horizon_s)
    return {**data, "sim": {**sim, "max_time_s": limit}}, t_resume


def bug_window(horizon_s: float) -> tuple[float, float]:
    """When the real lockup starts, in seconds after resume: ``BUG_WINDOW_S``, within the first half
    of the horizon."""
    lo, hi = BUG_WINDOW_S
    return lo, max(lo, min(hi, horizon_s / 2))


def bug_data(data: Mapping[str, Any], horizon_s: float, resume: float) -> dict[str, Any]:
    """``data`` with one real lockup injected after resume, and time enough to detect it."""
    sc = build_scenario({**data, "mitigation": {}})
    lo, hi = bug_window(horizon_s)
    bug = {"kind": BUG_KIND, "window_s": [lo, hi], "after": "resume"}
    need = min(MAX_TIME_S, resume + max(horizon_s, hi + detection_horizon(BUG_KIND, sc.kernel)))
    sim = dict(data.get("sim") or {})
    return {**data, "bugs": [bug], "sim": {**sim, "max_time_s": max(float(sim.get("max_time_s", 0)), need)}}


class Tally:
    """Progress over every race of an advice, whose size is known only as candidates leave:
    calls ``progress(result, runs done, runs planned now)``."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress
        self.total = 0
        self.done = 0

    def grow(self, n: int) -> None:
        self.total += n

    def shrink(self, n: int) -> None:
        self.total -= n

    def __call__(self, res: RunResult, _done: int, _total: int) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(res, self.done, self.total)


def _p_down(rows: Sequence[Row]) -> Proportion:
    ok = [r for r in rows if r.get("ok")]
    return Proportion(sum(1 for r in ok if r.get("outcome") in ("crash", "panic")), len(ok))


def race(
    data: Mapping[str, Any],
    candidates: Sequence[Candidate],
    budget: Budget,
    executor: Executor,
    tally: Tally | None = None,
    detect: bool = True,
) -> tuple[Race, bool]:
    """Run the compact comparison of ``candidates`` on ``data`` (a raw scenario mapping with the
    partition's facts); returns its figures and whether Ctrl-C interrupted it."""
    base, t_resume = with_horizon(data, budget.horizon_s, budget.seed)
    seeds = seeds_for(budget.seed, budget.runs)
    variants = [c.variant for c in candidates]
    plan = build_plan(base, variants, seeds)
    names = [c.name for c in candidates]
    det_specs: list[RunSpec] = []
    if detect and budget.detection_runs > 0:
        det_plan = build_plan(
            bug_data(base, budget.horizon_s, t_resume),
            variants,
            seeds_for(budget.seed, budget.detection_runs),
        )
        det_specs = det_plan.specs
    tally = tally if tally is not None else Tally()
    tally.grow(len(plan.specs) + len(det_specs))
    rows: dict[str, list[Row]] = {n: [] for n in names}
    out_after: dict[str, int] = {}
    alive = list(names)
    interrupted = False
    rounds = math.ceil(budget.runs / max(1, budget.batch))
    for r in range(rounds):
        batch = set(seeds[r * budget.batch : (r + 1) * budget.batch])
        specs = [s for s in plan.specs if s.variant in alive and s.seed in batch]
        results, interrupted = execute(specs, progress=tally, executor=executor)
        for res in results:
            rows[res.variant].append(res.row)
        if interrupted:
            break
        left_after = _eliminate(rows, alive)
        for name in left_after:
            out_after[name] = len(rows[name])
            alive.remove(name)
            tally.shrink(len(seeds) - len(rows[name]))
        if len(alive) <= 1:
            tally.shrink(sum(len(seeds) - len(rows[n]) for n in alive))
            break
    det_rows: dict[str, list[Row]] = {n: [] for n in names}
    if det_specs and not interrupted:
        results, interrupted = execute(det_specs, progress=tally, executor=executor)
        for res in results:
            det_rows[res.variant].append(res.row)
    scored = [
        _score(c, rows[c.name], det_rows[c.name] if det_specs else None, out_after.get(c.name))
        for c in candidates
    ]
    return Race(float(base["platform"]["link_gbps"]), t_resume, tuple(scored)), interrupted


def _eliminate(rows: Mapping[str, Sequence[Row]], alive: Sequence[str]) -> list[str]:
    """The candidates whose P(down) interval lies wholly above the safest alive candidate's."""
    props = {n: _p_down(rows[n]) for n in alive}
    ranked = [n for n in alive if props[n].n > 0]
    if not ranked:
        return []
    best = min(ranked, key=lambda n: (props[n].p or 0.0, alive.index(n)))
    ci_best = props[best].interval
    assert ci_best is not None
    out = []
    for n in ranked:
        ci = props[n].interval
        if n != best and ci is not None and ci[0] > ci_best[1]:
            out.append(n)
    return out


def _score(c: Candidate, rows: Sequence[Row], det: Sequence[Row] | None, left_after: int | None) -> Scored:
    fig = aggregate_variant(rows)
    ok = fig["ok"]
    detection = None
    if det is not None:
        dfig = aggregate_variant(det)
        bd = dfig["bugs_detected"]
        injected = int(bd["n"])
        detection = Detection(
            runs=len(det),
            detected=Proportion(int(bd["k"]), injected),
            delay_median_s=dfig["detection_delay_median_s"],
            delays_s=tuple(
                sorted(d for r in det if r.get("ok") for d in (r.get("detection_delays_s") or ()))
            ),
            went_down=_p_down(det).k,
        )
    return Scored(
        name=c.name,
        runs=len(rows),
        failed=fig["failed"],
        p_crash=Proportion(fig["outcomes"]["crash"], ok),
        p_panic=Proportion(fig["outcomes"]["panic"], ok),
        p_down=_p_down(rows),
        reports_mean=dict(fig["reports_mean"]),
        nmi_ipi_mean=dict(fig["nmi_ipi_mean"]),
        left_race_after=left_after,
        detection=detection,
    )

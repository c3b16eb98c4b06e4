"""Advice from a real log: fit the platform figures nobody publishes to what the log shows.

Approximate Bayesian computation by rejection.  The unknowns are three platform figures (each an
ASSUMPTION in the scenario schema): the effective link rate (``platform.link_gbps``), the fixed
per-fault overhead (``platform.fault_overhead_us``) and the fraction of memory still missing at
resume (``migration.resume_missing_fraction``).  Their prior is a box (``Prior``: log-uniform for
the rate and the overhead, uniform for the fraction), sampled as a Latin hypercube from the named
stream ``advise/fit`` of the seed (deterministic).  Each sample is simulated once (its own seed),
its kernel log is read back with the triage reader, and the sample is *accepted* when the run's
pattern after resume (``lpmsim.advise.pattern``: which detectors fired, on how many CPUs, how long
after resume, the stall lower bounds) matches the log's within the tolerance.  The accepted samples
are draws from the approximate posterior: their ranges and medians are reported, with their number.

A run stops ``window_s`` (how long the log goes on after resume) plus a margin after its resume,
as the compact comparison does (``lpmsim.advise.compact.with_horizon``), and its pattern is read
over ``window_s + TIME_FLOOR_S``: a report at the very end of the log may come up to a heartbeat
grid step later in a run whose resume falls elsewhere on the watchdog's hrtimer grid.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from lpmsim.advise.compact import with_horizon
from lpmsim.advise.pattern import TIME_FLOOR_S, LogPattern, matches, pattern
from lpmsim.advise.results import Fit, ParameterRange
from lpmsim.config.loader import build_scenario
from lpmsim.engine.rng import RngStreams
from lpmsim.runner import run_scenario
from lpmsim.sweeps.executors import worker_init
from lpmsim.sweeps.plan import point_data
from lpmsim.triage.analyze import triage_text
from lpmsim.triage.events import Triage

WINDOW_MARGIN_S = 5.0

LINK = "platform.link_gbps"
OVERHEAD = "platform.fault_overhead_us"
MISSING = "migration.resume_missing_fraction"


@dataclass(frozen=True)
class Prior:
    """One unknown: its field, its range, and whether it is sampled on a log scale."""

    field: str
    low: float
    high: float
    log: bool

    def draw(self, u: float) -> float:
        """The value at quantile ``u`` in [0, 1)."""
        if self.log:
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))


def default_priors(link_gbps: float) -> list[Prior]:
    """Effective link from a tenth to twice the given rate; overhead 10 µs to 5 ms; missing 1-100 %."""
    return [
        Prior(LINK, link_gbps / 10, link_gbps * 2, True),
        Prior(OVERHEAD, 10.0, 5000.0, True),
        Prior(MISSING, 0.01, 1.0, False),
    ]


def parse_prior(text: str, defaults: Sequence[Prior]) -> Prior:
    """``FIELD=LO:HI`` for one of the fitted fields (ValueError with one line otherwise)."""
    name, sep, rng = text.partition("=")
    known = {p.field: p for p in defaults}
    base = known.get(name.strip())
    lo, sep2, hi = rng.partition(":")
    if base is None or not sep or not sep2:
        raise ValueError(f"--prior {text!r}: expected FIELD=LO:HI with FIELD one of {', '.join(known)}")
    try:
        low, high = float(lo), float(hi)
    except ValueError:
        raise ValueError(f"--prior {text!r}: LO and HI must be numbers") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        raise ValueError(f"--prior {text!r}: need 0 < LO < HI")
    if base.field == MISSING and high > 1:
        raise ValueError(f"--prior {text!r}: a fraction is at most 1")
    return Prior(base.field, low, high, base.log)


def latin_hypercube(priors: Sequence[Prior], n: int, seed: int) -> list[dict[str, float]]:
    """``n`` samples: each prior's range cut in ``n`` equal-probability strata, one draw in each,
    the strata of the fields paired at random (stream ``advise/fit`` of ``seed``)."""
    rng = RngStreams(seed)["advise/fit"]
    cols = []
    for _ in priors:
        u = (rng.permutation(n) + rng.random(n)) / n
        cols.append(u)
    return [{p.field: p.draw(float(cols[j][i])) for j, p in enumerate(priors)} for i in range(n)]


def simulate_pattern(data: Mapping[str, Any], window_s: float) -> LogPattern:
    """Run ``data`` (with its seed) and read its kernel log back as the triage does."""
    sc = build_scenario(data)
    lines: list[str] = []
    run_scenario(sc, kernel_log=lines)
    tri: Triage = triage_text("\n".join(lines), "<simulated>")
    return pattern(tri, window_s)


def _job(data: Mapping[str, Any], window_s: float) -> LogPattern | str:
    try:
        return simulate_pattern(data, window_s)
    except Exception as exc:  # a sample the model refuses is a failed sample, not a failed fit
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


Progress = Callable[[int, int], None]


def _map(
    jobs: Sequence[tuple[dict[str, Any], float]], workers: int, progress: Progress | None
) -> list[LogPattern | str]:
    out: list[LogPattern | str | None] = [None] * len(jobs)
    done = 0
    if workers <= 1 or len(jobs) <= 1:
        for i, (d, w) in enumerate(jobs):
            out[i] = _job(d, w)
            done += 1
            if progress is not None:
                progress(done, len(jobs))
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)),
            mp_context=ctx,
            initializer=worker_init,
            initargs=(os.getpid(),),
        ) as pool:
            pending: dict[Future[LogPattern | str], int] = {
                pool.submit(_job, d, w): i for i, (d, w) in enumerate(jobs)
            }
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        out[pending.pop(fut)] = fut.result()
                        done += 1
                        if progress is not None:
                            progress(done, len(jobs))
            except KeyboardInterrupt:
                for fut in pending:
                    fut.cancel()
                raise
    return [x if x is not None else "not run" for x in out]


def fit(
    data: Mapping[str, Any],
    observed: LogPattern,
    log: str,
    priors: Sequence[Prior],
    runs: int = 48,
    tolerance: float = 0.25,
    seed: int = 1,
    jobs: int = 1,
    progress: Progress | None = None,
) -> Fit:
    """Rejection ABC of ``priors`` against ``observed`` on top of ``data`` (a raw scenario
    mapping).  Raises ``ScenarioError`` if ``data`` is not a valid scenario."""
    build_scenario(data)
    samples = latin_hypercube(priors, runs, seed)
    window = observed.window_s + WINDOW_MARGIN_S
    jobs_in: list[tuple[dict[str, Any], float]] = []
    for i, s in enumerate(samples):
        d = point_data(data, tuple(s.items()))
        d, _ = with_horizon(d, window, seed + i)
        d = point_data(d, (("sim.seed", seed + i),))
        # a report the log shows at its very end may come up to a heartbeat grid step later in a
        # run whose resume falls elsewhere on the watchdog's hrtimer grid: the floor of ``matches``
        jobs_in.append((d, observed.window_s + TIME_FLOOR_S))
    results = _map(jobs_in, jobs, progress)
    accepted = [
        s
        for s, r in zip(samples, results, strict=True)
        if isinstance(r, LogPattern) and matches(r, observed, tolerance)
    ]
    failed = sum(1 for r in results if not isinstance(r, LogPattern))
    params = tuple(
        ParameterRange(p.field, (p.low, p.high), None, tuple(sorted(a[p.field] for a in accepted)))
        for p in priors
    )
    return Fit(log, observed.to_dict(), tolerance, runs, len(accepted), params, failed)


def fitted_overrides(f: Fit) -> dict[str, float]:
    """The accepted medians, as scenario fields (empty when nothing was accepted)."""
    return {p.field: float(p.median) for p in f.parameters if p.median is not None}


def corners(f: Fit) -> list[tuple[str, dict[str, float]]]:
    """The two ends of the accepted box: the hardest platform (slowest link, largest overhead and
    missing fraction) and the easiest."""
    lo = {p.field: p.low for p in f.parameters}
    hi = {p.field: p.high for p in f.parameters}
    if any(v is None for v in (*lo.values(), *hi.values())):
        return []
    hard = {k: float(lo[k] if k == LINK else hi[k]) for k in lo}  # type: ignore[arg-type]
    easy = {k: float(hi[k] if k == LINK else lo[k]) for k in lo}  # type: ignore[arg-type]
    return [("hardest accepted platform", hard), ("easiest accepted platform", easy)]

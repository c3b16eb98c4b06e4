"""Pre-copy (VASI ``enabled``): rounds of sending pages while the partition runs on the source.

Round 1 sends every page.  Each later round resends the pages written during the previous round
(the dirty bitmap is harvested at the start of a round, as in QEMU and Xen; platform-facts 1.1,
3.1).  A page with write rate λ is dirtied during a round of length T with probability
1 - exp(-λT) (writes are Poisson).  The stop rule, checked after each round, in this order:

1. nothing was dirtied (``clean``);
2. the dirty set is at most ``precopy_stop_fraction`` of memory (``stop_fraction``);
3. ``precopy_max_rounds`` rounds have run (``max_rounds``);
4. sending the dirty set would exceed ``precopy_max_factor`` x memory in total (``max_factor``).

The pages dirtied during the last round are the pages still missing when the partition resumes
on the destination.  With ``resume_missing_fraction = f`` the rule is bypassed: after round 1 the
partition suspends with f x pages missing, each page included with probability min(1, c·w) where
w is its probability of being dirtied during round 1 (plus a tiny floor so that never-written
pages are eligible when f is larger than the written set) and c makes the expected count f x pages.

Both fidelity modes use the same rule: ``exact`` draws one Bernoulli per page, ``fluid`` one
binomial per skew bucket.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lpmsim.config.scenario import Scenario
from lpmsim.hypervisor.layout import Layout

_FLOOR = 1e-12


@dataclass
class PrecopyResult:
    rounds: int
    duration_s: float
    pages_sent: int
    stop_reason: str
    round_pages: list[int] = field(default_factory=list)
    round_s: list[float] = field(default_factory=list)
    missing_pages: np.ndarray | None = None  # exact: bool per page
    missing_buckets: np.ndarray | None = None  # fluid: int64 per bucket

    @property
    def missing_count(self) -> int:
        if self.missing_pages is not None:
            return int(np.count_nonzero(self.missing_pages))
        assert self.missing_buckets is not None
        return int(self.missing_buckets.sum())


def _fill_probabilities(weights: np.ndarray, sizes: np.ndarray, target: float) -> np.ndarray:
    """Inclusion probability min(1, c·w) per item (``sizes`` pages each) with Σ sizes·p = target."""
    w = weights + _FLOOR
    total = float(sizes.sum())
    if target >= total:
        return np.ones_like(w)
    if target <= 0:
        return np.zeros_like(w)
    lo, hi = 0.0, 1.0
    while float((sizes * np.minimum(1.0, hi * w)).sum()) < target:
        hi *= 4.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if float((sizes * np.minimum(1.0, mid * w)).sum()) < target:
            lo = mid
        else:
            hi = mid
    return np.minimum(1.0, hi * w)


class _Dirtier:
    """Draws the set of pages dirtied during a round of a given length, per fidelity mode."""

    def __init__(self, layout: Layout, mode: str, rng: np.random.Generator) -> None:
        self.mode = mode
        self.rng = rng
        if mode == "exact":
            self.rate = layout.page_write_rate
            self.sizes = np.ones(layout.total_pages, dtype=np.int64)
        else:
            b = layout.buckets
            self.rate = b.write_rate_per_page
            self.sizes = b.pages

    def dirty(self, duration: float) -> np.ndarray:
        p = -np.expm1(-self.rate * duration)
        if self.mode == "exact":
            return self.rng.random(p.size) < p
        return self.rng.binomial(self.sizes, p).astype(np.int64)

    def forced(self, round1_s: float, fraction: float) -> np.ndarray:
        w = -np.expm1(-self.rate * round1_s)
        target = fraction * float(self.sizes.sum())
        prob = _fill_probabilities(w, self.sizes, target)
        if self.mode == "exact":
            return self.rng.random(prob.size) < prob
        return self.rng.binomial(self.sizes, prob).astype(np.int64)

    @staticmethod
    def count(sel: np.ndarray) -> int:
        return int(np.count_nonzero(sel)) if sel.dtype == np.bool_ else int(sel.sum())


def run_precopy(scenario: Scenario, layout: Layout, rng: np.random.Generator) -> PrecopyResult:
    """Simulate the pre-copy rounds and return the set of pages missing at resume."""
    mig = scenario.migration
    tau = scenario.page_time_s
    total = layout.total_pages
    dirtier = _Dirtier(layout, scenario.sim.mode, rng)
    res = PrecopyResult(rounds=0, duration_s=0.0, pages_sent=0, stop_reason="")

    def send(pages: int) -> float:
        t = pages * tau
        res.rounds += 1
        res.pages_sent += pages
        res.duration_s += t
        res.round_pages.append(pages)
        res.round_s.append(t)
        return t

    t1 = send(total)
    if mig.resume_missing_fraction is not None:
        dirty = dirtier.forced(t1, mig.resume_missing_fraction)
        res.stop_reason = "forced"
    else:
        dirty = dirtier.dirty(t1)
        while True:
            n = dirtier.count(dirty)
            if n == 0:
                res.stop_reason = "clean"
                break
            if n <= mig.precopy_stop_fraction * total:
                res.stop_reason = "stop_fraction"
                break
            if res.rounds >= mig.precopy_max_rounds:
                res.stop_reason = "max_rounds"
                break
            if res.pages_sent + n > mig.precopy_max_factor * total:
                res.stop_reason = "max_factor"
                break
            dirty = dirtier.dirty(send(n))
    if scenario.sim.mode == "exact":
        res.missing_pages = dirty
    else:
        res.missing_buckets = dirty
    return res

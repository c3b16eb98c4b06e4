"""Small statistics for many runs: the Wilson score interval, means and medians that skip gaps.

Nothing here needs scipy: the interval is a closed formula and the rest is the standard library.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

Z95 = 1.959963984540054
"""The standard normal quantile at 0.975: a two-sided 95 % interval."""


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``k / n`` (Wilson 1927; Agresti & Coull 1998).

    With p = k/n::

        centre = (p + z²/2n) / (1 + z²/n)
        half   = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)

    Unlike the normal ("Wald") interval it is never empty at k = 0 or k = n and stays in [0, 1],
    which matters here: a policy that never crashed in 20 runs still has P(crash) up to 0.16.
    """
    if n <= 0:
        raise ValueError(f"wilson: need n >= 1 trials, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"wilson: need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    # The bounds are exact at the ends; keep rounding from leaving [0, 1] or excluding p.
    lo = 0.0 if k == 0 else max(0.0, min(p, centre - half))
    hi = 1.0 if k == n else min(1.0, max(p, centre + half))
    return lo, hi


@dataclass(frozen=True)
class Proportion:
    """``k`` events in ``n`` trials with its 95 % Wilson interval (``p``, ``lo``, ``hi`` None when n = 0)."""

    k: int
    n: int

    @property
    def p(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.k, self.n) if self.n else None

    def as_dict(self) -> dict[str, float | int | None]:
        ci = self.interval
        return {
            "k": self.k,
            "n": self.n,
            "p": self.p,
            "ci95_low": None if ci is None else ci[0],
            "ci95_high": None if ci is None else ci[1],
        }


def _present(values: Iterable[float | int | None]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def mean_of(values: Iterable[float | int | None]) -> float | None:
    """The mean of the values that are present (None when there are none)."""
    xs = _present(values)
    return math.fsum(xs) / len(xs) if xs else None


def median_of(values: Iterable[float | int | None]) -> float | None:
    """The median of the values that are present (None when there are none)."""
    xs = _present(values)
    return float(statistics.median(xs)) if xs else None

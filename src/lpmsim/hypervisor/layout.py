"""Where pages are and how often they are touched and written.

The partition's pages are split into regions in address order.  Within a region, the page of
rank i (1 = hottest) gets weight 1/i^s (Zipf; s = 0 is uniform).  Hot pages are not contiguous:
ranks are scattered over the region's addresses by a random permutation (stream ``layout``), an
ASSUMPTION that matters for address-order push and for prefetching neighbours.

Two views of the same propensities:

* page-exact (``page_touch_prob``, ``page_write_rate``): one value per page, for ``exact`` mode;
* buckets (``Buckets``): ranks grouped geometrically (ratio ``BUCKET_RATIO``) per region, each with
  its page count and total touch and write mass, for ``fluid`` mode.  Inside a bucket pages are
  treated as equally hot; with ratio 1.25 the Zipf weight varies by at most 25 % inside a bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from lpmsim.config.scenario import Region, Scenario

BUCKET_RATIO = 1.25
_EXACT_SUM_LIMIT = 1 << 16  # ranks below this are summed exactly, above by the integral


def region_page_counts(total_pages: int, regions: tuple[Region, ...]) -> np.ndarray:
    """Pages per region: proportional to memory_fraction, each region at least one page if possible."""
    fr = np.array([r.memory_fraction for r in regions], dtype=float)
    counts = np.floor(fr * total_pages).astype(np.int64)
    counts[np.argmax(fr)] += total_pages - counts.sum()
    if total_pages >= len(regions):
        while (counts == 0).any():
            counts[np.argmax(counts)] -= 1
            counts[np.argmin(counts)] += 1
    return counts


def zipf_mass(lo: np.ndarray, hi: np.ndarray, s: float) -> np.ndarray:
    """Sum of i^-s for integer i in [lo, hi) (1-based ranks), vectorised.

    Exact summation below ``_EXACT_SUM_LIMIT``; above it the Euler–Maclaurin midpoint integral,
    whose relative error there is far below 1e-9.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    if s == 0.0:
        return hi - lo
    out = np.zeros_like(lo)
    small = min(_EXACT_SUM_LIMIT, int(hi.max()) if hi.size else 0)
    if small > 1:
        ranks = np.arange(1, small, dtype=np.float64)
        csum = np.concatenate(([0.0], np.cumsum(ranks**-s)))
        a = np.clip(lo, 1, small).astype(np.int64)
        b = np.clip(hi, 1, small).astype(np.int64)
        out += csum[b - 1] - csum[a - 1]
    a = np.maximum(lo, small)
    b = np.maximum(hi, small)
    big = b > a
    if big.any():
        x0 = a[big] - 0.5
        x1 = b[big] - 0.5
        if abs(s - 1.0) < 1e-12:
            out[big] += np.log(x1 / x0)
        else:
            out[big] += (x1 ** (1 - s) - x0 ** (1 - s)) / (1 - s)
    return out


@dataclass(frozen=True)
class Buckets:
    """Skew buckets of all regions, in address order of their regions."""

    region: np.ndarray  # region index of each bucket
    pages: np.ndarray  # int64 pages per bucket
    touch: np.ndarray  # touch probability mass of the whole bucket (sums to 1 over all buckets)
    write_rate: np.ndarray  # writes per second into the whole bucket, all vCPUs running

    @property
    def touch_per_page(self) -> np.ndarray:
        return np.divide(self.touch, self.pages, out=np.zeros_like(self.touch), where=self.pages > 0)

    @property
    def write_rate_per_page(self) -> np.ndarray:
        return np.divide(
            self.write_rate, self.pages, out=np.zeros_like(self.write_rate), where=self.pages > 0
        )


class Layout:
    """Regions, page ranges and propensities of one scenario."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator | None = None) -> None:
        self.scenario = scenario
        self.regions = scenario.access.regions
        self.total_pages = scenario.total_pages
        self.counts = region_page_counts(self.total_pages, self.regions)
        self.starts = np.concatenate(([0], np.cumsum(self.counts)[:-1])).astype(np.int64)
        self._rng = rng
        acc = scenario.access
        self.total_touch_rate = scenario.partition.vcpus * acc.touch_rate_hz  # touches/s, all vCPUs running

    # -- page-exact view ------------------------------------------------------------------------
    @cached_property
    def page_region(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.regions), dtype=np.int16), self.counts)

    @cached_property
    def page_touch_prob(self) -> np.ndarray:
        """Probability that one touch lands on each page (sums to 1)."""
        if self._rng is None:
            raise ValueError("the page-exact view needs a layout RNG")
        out = np.empty(self.total_pages, dtype=np.float64)
        for r, reg in enumerate(self.regions):
            n = int(self.counts[r])
            if n == 0:
                continue
            ranks = np.arange(1, n + 1, dtype=np.float64)
            w = ranks**-reg.zipf_s if reg.zipf_s else np.ones(n)
            w *= reg.touch_share / w.sum()
            perm = self._rng.permutation(n)
            out[self.starts[r] + perm] = w
        return out

    @cached_property
    def page_write_rate(self) -> np.ndarray:
        """Writes per second to each page with every vCPU running."""
        wf = np.array([r.write_fraction for r in self.regions])
        return self.page_touch_prob * wf[self.page_region] * self.total_touch_rate

    # -- bucket view ------------------------------------------------------------------------------
    @cached_property
    def buckets(self) -> Buckets:
        regs: list[int] = []
        pages: list[np.ndarray] = []
        touch: list[np.ndarray] = []
        writes: list[np.ndarray] = []
        for r, reg in enumerate(self.regions):
            n = int(self.counts[r])
            if n == 0:
                continue
            if reg.zipf_s == 0.0:
                edges = np.array([1, n + 1], dtype=np.float64)
            else:
                e = [1.0]
                while e[-1] < n + 1:
                    e.append(max(e[-1] + 1, np.floor(e[-1] * BUCKET_RATIO)))
                edges = np.minimum(np.array(e), n + 1)
                edges = np.unique(edges)
            lo, hi = edges[:-1], edges[1:]
            mass = zipf_mass(lo, hi, reg.zipf_s)
            t = mass / mass.sum() * reg.touch_share
            regs.extend([r] * len(lo))
            pages.append((hi - lo).astype(np.int64))
            touch.append(t)
            writes.append(t * reg.write_fraction * self.total_touch_rate)
        return Buckets(
            region=np.array(regs, dtype=np.int64),
            pages=np.concatenate(pages),
            touch=np.concatenate(touch),
            write_rate=np.concatenate(writes),
        )

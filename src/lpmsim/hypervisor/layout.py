"""Where pages are, and how often each is touched and written.

The partition's pages are split into the workload's regions in address order (``Workload.regions``;
sizes from ``size_fraction`` or ``size_gib``, the ``remainder`` region takes the rest).  A
``per_cpu`` region is split into one equal slice per vCPU; each slice is a region of its own
(``name/i``) that only vCPU i touches.

Within a region, the page of rank i (1 = hottest) gets touch probability ∝ 1/i^s (Zipf; s = 0 is
uniform), normalised to 1 per region.  Hot pages are not contiguous: ranks are scattered over the
region's addresses by a random permutation (stream ``layout``), an ASSUMPTION that matters for
address-order push and for prefetching neighbours.

``touch_rate`` of a region is the touches per second that land in it with every vCPU running its
normal mix (``guest.rates.region_touch_rates``); ``write_fraction`` of those write.  Two views:

* page-exact (``page_touch_prob``, ``page_write_rate``): one value per page, for ``exact`` mode;
* buckets (``Buckets``): ranks grouped geometrically (ratio ``BUCKET_RATIO``) per region, each with
  its page count and touch and write mass, for ``fluid`` mode (per-CPU slices are statistically
  alike and form one region there).  Inside a bucket pages are treated as equally hot; with ratio
  1.25 the Zipf weight varies by at most 25 % inside a bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from lpmsim.config.scenario import Scenario

BUCKET_RATIO = 1.25
_EXACT_SUM_LIMIT = 1 << 16  # ranks below this are summed exactly, above by the integral


@dataclass(frozen=True)
class RegionLayout:
    name: str
    start: int
    pages: int
    zipf_s: float
    write_fraction: float
    touch_rate: float  # touches/s into this region, all vCPUs running
    per_cpu_of: str | None = None  # parent region name for a per-CPU slice
    cpu: int = -1


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


def _rank_edges(n: int, s: float) -> np.ndarray:
    if s == 0.0:
        return np.array([1, n + 1], dtype=np.float64)
    e = [1.0]
    while e[-1] < n + 1:
        e.append(max(e[-1] + 1, np.floor(e[-1] * BUCKET_RATIO)))
    return np.unique(np.minimum(np.array(e), n + 1))


@dataclass(frozen=True)
class Buckets:
    """Skew buckets of all (fluid) regions, in address order of their regions."""

    region: np.ndarray  # fluid-region index of each bucket
    pages: np.ndarray  # int64 pages per bucket
    touch: np.ndarray  # touch probability mass of the bucket within its region (sums to 1 per region)
    write_rate: np.ndarray  # writes per second into the whole bucket, all vCPUs running

    @property
    def touch_per_page(self) -> np.ndarray:
        return np.divide(self.touch, self.pages, out=np.zeros_like(self.touch), where=self.pages > 0)

    @property
    def write_rate_per_page(self) -> np.ndarray:
        return np.divide(
            self.write_rate, self.pages, out=np.zeros_like(self.write_rate), where=self.pages > 0
        )


def region_sizes(scenario: Scenario) -> list[int]:
    """Pages per workload region (before per-CPU splitting), in address order."""
    total = scenario.total_pages
    page = scenario.page_bytes
    regs = scenario.workload.regions
    sizes: list[int] = []
    for r in regs:
        if r.remainder:
            sizes.append(0)
        elif r.size_gib is not None:
            sizes.append(max(1, int(r.size_gib * 2**30) // page))
        else:
            assert r.size_fraction is not None
            sizes.append(max(1, int(r.size_fraction * total)))
    fixed = sum(sizes)
    rest = total - fixed
    if rest < 1:
        # Too small a partition for the absolute sizes: scale the fixed regions down to leave one page.
        scale = (total - 1) / fixed
        sizes = [max(1, int(s * scale)) if not r.remainder else 0 for s, r in zip(sizes, regs, strict=True)]
        while sum(sizes) > total - 1:
            sizes[int(np.argmax(sizes))] -= 1
        rest = total - sum(sizes)
    for i, r in enumerate(regs):
        if r.remainder:
            sizes[i] = rest
    return sizes


class Layout:
    """Regions, page ranges and propensities of one scenario."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator | None = None) -> None:
        from lpmsim.guest.rates import region_touch_rates

        self.scenario = scenario
        self.total_pages = scenario.total_pages
        self._rng = rng
        ncpu = scenario.partition.vcpus
        rates = region_touch_rates(scenario)
        self.workload_regions = scenario.workload.regions
        self.regions: list[RegionLayout] = []  # exact-mode regions (per-CPU slices separate)
        self.fluid_regions: list[RegionLayout] = []  # fluid-mode regions (one per workload region)
        self.index: dict[str, int] = {}
        self.fluid_index: dict[str, int] = {}
        start = 0
        for spec, n in zip(self.workload_regions, region_sizes(scenario), strict=True):
            rate = rates[spec.name]
            fr = RegionLayout(spec.name, start, n, spec.zipf_s, spec.write_fraction, rate)
            self.fluid_index[spec.name] = len(self.fluid_regions)
            self.fluid_regions.append(fr)
            if spec.per_cpu and n >= ncpu:
                per = n // ncpu
                for c in range(ncpu):
                    cnt = per if c < ncpu - 1 else n - per * (ncpu - 1)
                    name = f"{spec.name}/{c}"
                    self.index[name] = len(self.regions)
                    self.regions.append(
                        RegionLayout(
                            name,
                            start + c * per,
                            cnt,
                            spec.zipf_s,
                            spec.write_fraction,
                            rate / ncpu,
                            spec.name,
                            c,
                        )
                    )
            else:
                self.index[spec.name] = len(self.regions)
                self.regions.append(fr)
            start += n
        assert start == self.total_pages
        self.starts = np.array([r.start for r in self.regions], dtype=np.int64)
        self.counts = np.array([r.pages for r in self.regions], dtype=np.int64)

    def region_of_cpu(self, name: str, cpu: int) -> int:
        """Exact-mode region index that ``cpu`` touches for workload region ``name``."""
        idx = self.index.get(f"{name}/{cpu}")
        return self.index[name] if idx is None else idx

    # -- page-exact view ------------------------------------------------------------------------
    @cached_property
    def page_region(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.regions), dtype=np.int32), self.counts)

    @cached_property
    def page_touch_prob(self) -> np.ndarray:
        """Probability that a touch of its region lands on each page (sums to 1 per region)."""
        if self._rng is None:
            raise ValueError("the page-exact view needs a layout RNG")
        out = np.empty(self.total_pages, dtype=np.float64)
        for reg in self.regions:
            n = reg.pages
            if n == 0:
                continue
            if reg.zipf_s:
                w = np.arange(1, n + 1, dtype=np.float64) ** -reg.zipf_s
                w /= w.sum()
                out[reg.start + self._rng.permutation(n)] = w
            else:
                out[reg.start : reg.start + n] = 1.0 / n
        return out

    @cached_property
    def page_write_rate(self) -> np.ndarray:
        """Writes per second to each page with every vCPU running its normal mix."""
        per_region = np.array([r.touch_rate * r.write_fraction for r in self.regions])
        return self.page_touch_prob * per_region[self.page_region]

    # -- bucket view ------------------------------------------------------------------------------
    @cached_property
    def buckets(self) -> Buckets:
        ncpu = self.scenario.partition.vcpus
        regs: list[int] = []
        pages: list[np.ndarray] = []
        touch: list[np.ndarray] = []
        writes: list[np.ndarray] = []
        for ri, (reg, spec) in enumerate(zip(self.fluid_regions, self.workload_regions, strict=True)):
            n = reg.pages
            if n == 0:
                continue
            slices = ncpu if spec.per_cpu and n >= ncpu else 1
            per = n // slices
            edges = _rank_edges(per, reg.zipf_s)
            lo, hi = edges[:-1], edges[1:]
            mass = zipf_mass(lo, hi, reg.zipf_s)
            t = mass / mass.sum()
            cnt = (hi - lo).astype(np.int64) * slices
            cnt[-1] += n - int(cnt.sum())
            regs.extend([ri] * len(lo))
            pages.append(cnt)
            touch.append(t)
            writes.append(t * reg.write_fraction * reg.touch_rate)
        return Buckets(
            region=np.array(regs, dtype=np.int64),
            pages=np.concatenate(pages),
            touch=np.concatenate(touch),
            write_rate=np.concatenate(writes),
        )

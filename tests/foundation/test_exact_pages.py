"""``ExactPages`` keeps its masses and sampling weights incrementally; it must give the very floats
and the very pages that recomputing everything with numpy gives (``_Recomputed`` below: the
plain implementation, one ``np.subtract.at`` per array and fresh cumulative sums per draw)."""

from __future__ import annotations

import numpy as np
import pytest

from lpmsim.hypervisor.exact import BLOCK, RESIDENT, ExactPages


class _Recomputed:
    """Reference: numpy arrays updated with ``np.subtract.at``; weights recomputed at every draw."""

    def __init__(self, tp: np.ndarray, missing: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> None:
        self.tp, self.starts, self.counts = tp, starts, counts
        self.state = np.where(missing, 1, RESIDENT).astype(np.int8)
        nb = (counts + BLOCK - 1) // BLOCK
        self.boff = np.concatenate(([0], np.cumsum(nb))).astype(np.int64)
        idx = np.flatnonzero(missing)
        blocks, regions = self._locate(idx)
        self.bmass = np.bincount(blocks, weights=tp[idx], minlength=int(self.boff[-1]))
        self.bcount = np.bincount(blocks, minlength=int(self.boff[-1])).astype(np.int64)
        self.rmass = np.bincount(regions, weights=tp[idx], minlength=counts.size)
        self.rcount = np.bincount(regions, minlength=counts.size).astype(np.int64)

    def _locate(self, pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = np.searchsorted(self.starts, pages, side="right") - 1
        return self.boff[r] + (pages - self.starts[r]) // BLOCK, r

    def mass(self, r: int) -> float:
        return max(0.0, float(self.rmass[r])) if self.rcount[r] > 0 else 0.0

    def mark(self, pages: list[int]) -> None:
        arr = np.array(pages, dtype=np.int64)
        self.state[arr] = RESIDENT
        blocks, regions = self._locate(arr)
        w = self.tp[arr]
        np.subtract.at(self.bmass, blocks, w)
        np.subtract.at(self.bcount, blocks, 1)
        np.subtract.at(self.rmass, regions, w)
        np.subtract.at(self.rcount, regions, 1)

    def sample(self, region: int, rng: np.random.Generator) -> int:
        b0, b1 = int(self.boff[region]), int(self.boff[region + 1])
        live = np.where(self.bcount[b0:b1] > 0, np.maximum(self.bmass[b0:b1], 0.0), 0.0)
        cum = np.cumsum(live)
        b = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), cum.size - 1)
        lo = int(self.starts[region]) + b * BLOCK
        hi = min(lo + BLOCK, int(self.starts[region] + self.counts[region]))
        w = np.where(self.state[lo:hi] != RESIDENT, self.tp[lo:hi], 0.0)
        cw = np.cumsum(w)
        i = int(np.searchsorted(cw, rng.random() * cw[-1], side="right"))
        return lo + min(i, cw.size - 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_pages_match_recomputing_everything(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = np.array([3 * BLOCK + 17, 2 * BLOCK, 5 * BLOCK - 1, 700])
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    n = int(counts.sum())
    tp = np.empty(n)
    for s, c in zip(starts, counts, strict=True):
        w = rng.pareto(1.2, c) + 1e-3  # skewed, like a Zipf region
        tp[s : s + c] = w / w.sum()
    missing = rng.random(n) < 0.7
    fast = ExactPages(tp, missing, starts, counts)
    ref = _Recomputed(tp, missing, starts, counts)
    left = list(rng.permutation(np.flatnonzero(missing)))
    draws_fast = np.random.default_rng(seed + 100)
    draws_ref = np.random.default_rng(seed + 100)
    while left:
        k = int(rng.choice([1, 1, 2, 3, 40, 500]))  # mostly one page at a time, as the link does
        batch, left = [int(p) for p in left[:k]], left[k:]
        fast.mark_resident(batch)
        ref.mark(batch)
        assert fast.not_resident == len(left)
        for r in range(counts.size):
            assert fast.region_missing_mass(r) == ref.mass(r)
            if ref.rcount[r] > 0:
                for _ in range(2):
                    p = fast.sample_missing(r, draws_fast)
                    assert p == ref.sample(r, draws_ref)
                    assert fast.state[p] != RESIDENT
    assert all(fast.region_missing_mass(r) == 0.0 for r in range(counts.size))
    assert np.array_equal(fast.state, ref.state)

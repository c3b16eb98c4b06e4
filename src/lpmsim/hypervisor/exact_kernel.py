"""The page draw's cumulative sums in one compiled call (``ExactPages.sample_missing``, issue 12).

``sample_missing`` draws a block of a region, then a page of that block, each with probability
proportional to its weight: a uniform U times the last of the weights' cumulative sums, and the
first index whose cumulative sum exceeds it (``searchsorted(..., side="right")``).  The cumulative
sums are kept between draws and recomputed from the first weight that changed (pages arrive in
push order, so about half a 4,096-page block per draw: 261 million additions over the 121,588
draws of the ``default-explicit`` exact benchmark).

``cum_search`` does the recomputation and the search in one call.  The compiled version
(``_cum_search_loop``, numba, ``guest.fluid_draws.jit``) adds the weights one after the other,
from the last valid sum, as numpy's ``cumsum`` does (an ``add.accumulate``: a sequential loop, no
pairwise summation), so it gives the same floats; the search is the binary search of numpy's
``searchsorted`` on a non-decreasing array (the weights are >= 0), so it gives the same index.
Where numba is not installed (or ``LPMSIM_NUMBA=0``) ``cum_search`` is ``exact.cum_search_np``,
the numpy calls used before (in ``exact.py``, so that importing lpmsim does not import numba:
``ExactPages`` imports this module at its ``COMPILED_AFTER``-th draw); ``tests/foundation/test_exact_kernel.py`` checks the two agree bit for
bit.
"""

from __future__ import annotations

import numpy as np

from lpmsim.guest.fluid_draws import HAVE_NUMBA, jit
from lpmsim.hypervisor.exact import cum_search_np


@jit
def _cum_search_loop(x: np.ndarray, out: np.ndarray, lo: int, mid: int, hi: int, u: float) -> int:
    """``cum_search_np`` as loops (compiled): the same additions in the same order, the same
    binary search."""
    if mid < hi:
        acc = x[mid] if mid == lo else out[mid - 1] + x[mid]
        out[mid] = acc
        for k in range(mid + 1, hi):
            acc += x[k]
            out[k] = acc
    v = u * out[hi - 1]
    a = lo
    b = hi
    while a < b:
        m = a + ((b - a) >> 1)
        if out[m] <= v:
            a = m + 1
        else:
            b = m
    return min(a - lo, hi - lo - 1)


__all__ = ["cum_search", "cum_search_np"]

cum_search = _cum_search_loop if HAVE_NUMBA else cum_search_np
"""The compiled loop where numba is installed, else the numpy calls: the same floats and index."""

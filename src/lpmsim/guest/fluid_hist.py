"""The histogram of episode stalls kept by ``GuestMetrics`` (running counts, not every stall).

Plain Python (no numba): ``GuestMetrics`` uses it as is, the compiled fluid step
(``fluid_kernel``) compiles the same function; ``math.log10`` and ``math.floor`` give the same bin
in both.
"""

from __future__ import annotations

import math

import numpy as np

HIST_PER_DECADE = 4
HIST_LOW_EXP = -6  # the first bin's lower edge, 10^-6 s
HIST_BINS = 40  # 10^-6 .. 10^4 s, 4 bins per decade; below and above clipped into the ends


def hist_edges() -> np.ndarray:
    """Edges of the episode-stall histogram (seconds; the ends are open)."""
    return np.asarray(10.0 ** (HIST_LOW_EXP + np.arange(HIST_BINS + 1) / HIST_PER_DECADE))


def hist_bin(x: float) -> int:
    """The histogram bin of a stall of ``x`` seconds (> 0)."""
    b = math.floor((math.log10(x) - HIST_LOW_EXP) * HIST_PER_DECADE)
    if b < 0:
        return 0
    if b >= HIST_BINS:
        return HIST_BINS - 1
    return b

"""Will the page-exact mode fit in this machine's memory?  Refuse up front, not after minutes.

``sim.mode = "exact"`` holds about ``EXACT_BYTES_PER_PAGE`` bytes per page of the partition at its
peak (touch probability and write rate as float64, page state, dirty sets and random draws of a
pre-copy round: docs/performance.md), so a 16 TiB partition of 64 KiB pages needs ~11 GB and a
64 TiB one of 4 KiB pages ~700 GB.  The estimate is compared with the memory available now
(``MemAvailable`` of ``/proc/meminfo``, else the physical memory); the fluid mode's state is a few
hundred values per region bucket whatever the memory size, so it is the suggestion.
"""

from __future__ import annotations

import os
from pathlib import Path

from lpmsim.config.scenario import Scenario

EXACT_BYTES_PER_PAGE = 40
"""Peak bytes per page of the exact mode (measured: docs/performance.md)."""


def exact_mode_bytes(sc: Scenario) -> int:
    """Estimated peak memory of the exact mode for this scenario's partition."""
    return EXACT_BYTES_PER_PAGE * sc.total_pages


def available_memory_bytes() -> int | None:
    """Memory this process can still use: MemAvailable, else physical memory, else None (unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def gb(n: float) -> str:
    """Bytes as GB (MB below 1 GB)."""
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"


def exact_memory_problem(sc: Scenario, available: int | None = None) -> str | None:
    """The one-line refusal if the exact mode would not fit, else None (fluid mode: always None)."""
    if sc.sim.mode != "exact":
        return None
    need = exact_mode_bytes(sc)
    have = available_memory_bytes() if available is None else available
    if have is None or need <= have:
        return None
    return (
        f"sim.mode: exact mode needs about {gb(need)} for {sc.total_pages:,} pages "
        f"(~{EXACT_BYTES_PER_PAGE} bytes per page) but {gb(have)} of memory is available; "
        'use sim.mode = "fluid" (--set sim.mode=fluid), which tracks region buckets instead of pages'
    )


def exact_memory_note(sc: Scenario) -> str:
    """``, exact mode needs about N GB`` for ``lpmsim validate``'s ok line (empty in fluid mode)."""
    return f", needs about {gb(exact_mode_bytes(sc))} of memory" if sc.sim.mode == "exact" else ""

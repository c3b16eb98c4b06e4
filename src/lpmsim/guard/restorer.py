"""Waiting for the end of the memory transfer on pre-v6.0 kernels, where drmgr's ``post`` comes too early.

``hold``: wait ``hold_s`` seconds.  ``steal``: wait until the partition's stolen time (the ``steal``
column of the ``cpu`` line of /proc/stat; on pseries the kernel accounts there the time a vCPU was not
dispatched by the hypervisor, which includes vCPUs blocked on pages still on the source) is back at its
pre-migration level (cumulative steal fraction at ``pre`` + ``steal_margin_pct``) for ``settle_s``.
Both are bounded by ``max_s``, the hard maximum.  Clock and sleep are injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lpmsim.guard.files import read_small
from lpmsim.guard.paths import Paths


@dataclass(frozen=True)
class StealSample:
    steal: int  # USER_HZ ticks, all CPUs
    total: int  # USER_HZ ticks, all columns, all CPUs

    @property
    def fraction(self) -> float:
        return self.steal / self.total if self.total > 0 else 0.0


def parse_proc_stat(text: str) -> StealSample:
    """The aggregate ``cpu`` line of /proc/stat; ValueError if there is none or it is not numbers."""
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            if not fields[1:] or not all(v.isascii() and v.isdigit() and len(v) <= 24 for v in fields[1:]):
                raise ValueError("the 'cpu' line of /proc/stat is not a list of counters")
            values = [int(v) for v in fields[1:]]
            # user nice system idle iowait irq softirq steal guest guest_nice; guest* are already in user/nice
            steal = values[7] if len(values) > 7 else 0
            return StealSample(steal, sum(values[:8]))
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def read_steal(paths: Paths) -> StealSample:
    """Raises OSError or ValueError (UnicodeDecodeError included) when /proc/stat cannot be used."""
    return parse_proc_stat(read_small(paths.proc_stat, 16 * 1024 * 1024).decode("ascii"))


def read_lparcfg(paths: Paths) -> dict[str, str]:
    """``key=value`` lines of /proc/powerpc/lparcfg (for the record: shared mode, active processors)."""
    out: dict[str, str] = {}
    try:
        for line in read_small(paths.lparcfg).decode("ascii", errors="replace").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip()
    except OSError:
        pass
    return out


def wait_hold(
    hold_s: float,
    max_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    still_wanted: Callable[[], bool] = lambda: True,
) -> str:
    end = clock() + min(hold_s, max_s)
    while (left := end - clock()) > 0:
        sleep(min(left, 5.0))
        if not still_wanted():
            return "cancelled"
    return "hold" if hold_s <= max_s else "max_s"


def wait_steal(
    baseline: float,
    margin_pct: float,
    settle_s: float,
    max_s: float,
    poll_s: float,
    sample: Callable[[], StealSample],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    still_wanted: Callable[[], bool] = lambda: True,
) -> str:
    """Return ``"settled"`` when steal stayed <= baseline + margin for settle_s, ``"max_s"`` at the bound,
    ``"cancelled"`` when ``still_wanted()`` turns false (someone else restored)."""
    threshold = baseline + margin_pct / 100.0
    start = clock()
    prev = sample()
    calm_since: float | None = None
    while True:
        now = clock()
        if now - start >= max_s:
            return "max_s"
        sleep(min(poll_s, max(start + max_s - now, 0.0)))
        if not still_wanted():
            return "cancelled"
        cur = sample()
        now = clock()
        d_total = cur.total - prev.total
        if d_total > 0:
            frac = (cur.steal - prev.steal) / d_total
            if frac <= threshold:
                calm_since = now if calm_since is None else calm_since
                if now - calm_since >= settle_s:
                    return "settled"
            else:
                calm_since = None
        prev = cur


def system_clock() -> float:
    return time.monotonic()

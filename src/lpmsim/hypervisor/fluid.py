"""Aggregate (fluid) post-copy: missing pages counted per skew bucket, the link as a fluid queue.

Used for partitions too large to track page by page (16 TiB = 2^28 pages of 64 KiB).  The state is

* ``missing[b]`` — pages of bucket b not yet committed to the link (still only on the source);
* ``backlog``    — demand pages queued at the link (a real number: a fluid queue);
* the push, which uses every link slot that demand does not.

A fault latency is computed from the queue state at the moment of the fault, by the same rules as
the exact link: rtt + tau + overhead + waiting, where waiting is

* ``demand-first``: backlog·tau + tau/2 when demand is queued, otherwise the non-preemptive priority
  (Cobham) mean R / (1 - rho_d), R = rho_link·tau/2, with rho_link = 1 while the push runs;
* ``shared-fifo``: additionally the push window queued ahead, min(window, pages left)·tau, and the
  link is shared in proportion to the queue's composition (demand backlog vs push window).

Demand utilisation rho_d is an exponentially weighted estimate over ``RHO_TAU_S``.  Differences
from ``exact`` (documented in docs/model/transfer.md): pages inside a bucket are equally hot; a
committed page's touch mass leaves the bucket when it is committed, not when it arrives; a fault
on a page already committed is counted as a fault that waits, without a new request.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from lpmsim.config.scenario import Scenario
from lpmsim.engine.core import Environment, Event
from lpmsim.hypervisor.exact import LinkCounters
from lpmsim.hypervisor.layout import Buckets

RHO_TAU_S = 0.05
RHO_MAX = 0.98


def _take_proportional(avail: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Take n items from bins with ``avail`` items each, proportionally (multinomial, then capped)."""
    take = np.zeros_like(avail)
    left = min(int(n), int(avail.sum()))
    while left > 0:
        room = avail - take
        tot = room.sum()
        if tot <= 0:
            break
        draw = rng.multinomial(left, room / tot)
        draw = np.minimum(draw, room)
        take += draw
        left -= int(draw.sum())
    return take


class FluidTransfer:
    """Post-copy state of the fluid mode."""

    def __init__(
        self,
        scenario: Scenario,
        buckets: Buckets,
        missing: np.ndarray,
        rng: np.random.Generator,
        start_s: float,
        env: Environment | None = None,
        shared: np.ndarray | None = None,
    ) -> None:
        pf = scenario.platform
        self.rng = rng
        self.buckets = buckets
        self.tpp = buckets.touch_per_page
        self.missing = missing.astype(np.int64).copy()
        self.missing_total = int(self.missing.sum())  # kept in step with ``missing``
        self.tau = scenario.page_time_s
        self.rtt = pf.rtt_us * 1e-6
        self.overhead = pf.fault_overhead_us * 1e-6
        self.window = pf.push_window_pages
        self.fifo_mode = pf.discipline == "shared-fifo"
        self.prefetch = pf.prefetch_pages
        self.push_enabled = pf.background_push
        self.backlog = 0.0
        # Touch mass (per region) of requested pages that have not arrived yet, released when they land.
        self.nregions = int(buckets.region.max()) + 1 if buckets.region.size else 0
        self.pending: deque[tuple[float, np.ndarray]] = deque()
        self.pending_mass = np.zeros(self.nregions)
        # Per-CPU regions: a requested page is touched only by the vCPU that asked for it, which is
        # stalled until it lands, so it is invisible to every other vCPU.
        self.shared = np.ones(self.nregions, dtype=bool) if shared is None else np.asarray(shared, dtype=bool)
        self.rho_d = 0.0
        self.carry = 0.0
        self.counters = LinkCounters()
        self.completed_at: float | None = None
        self.completed: Event = (env or Environment(start_s)).event()
        self.now = start_s
        self.region_of = buckets.region
        # each region's buckets, and the per-region missing touch mass while nothing changed (the
        # guest asks for it twice a step; ``missing`` and ``pending_mass`` change only in
        # ``request`` and ``step``, which drop it)
        self._region_sel = [np.flatnonzero(self.region_of == r) for r in range(self.nregions)]
        self._mm: np.ndarray | None = None
        self._arrivals = 0.0
        # Push groups, in push order: a whole region (pages scattered, so the push drains its
        # buckets in proportion to what they miss) or a single bucket (hottest first).
        if pf.push_order == "address":
            self.groups = [np.flatnonzero(buckets.region == r) for r in np.unique(buckets.region)]
        else:
            self.groups = [np.array([b]) for b in np.argsort(-self.tpp, kind="stable")]
        self._group = 0
        self._group_region = [int(self.region_of[g[0]]) for g in self.groups]  # each group's region
        if self.missing_total == 0:
            self._complete(start_s)

    # -- what a touch sees ---------------------------------------------------------------------
    def region_missing_mass(self) -> np.ndarray:
        """Per region: probability that a touch hits a page not resident (uncommitted or requested)."""
        if self._mm is None:
            own = np.bincount(self.region_of, weights=self.missing * self.tpp, minlength=self.nregions)
            self._mm = np.minimum(np.maximum(own + self.pending_mass * self.shared, 0.0), 1.0)  # clip
            self._mm.flags.writeable = False
        return self._mm

    def push_active(self) -> bool:
        return self.push_enabled and self.missing_total > 0

    def wait(self) -> float:
        tau = self.tau
        push = self.push_active()
        if self.backlog >= 1.0:
            w = self.backlog * tau + tau / 2
        else:
            rho = min(self.rho_d, RHO_MAX)
            r = tau / 2 if push else rho * tau / 2
            w = r / (1.0 - rho)
        return w + self._window_wait()

    def latency(self, outstanding: float | None = None) -> float:
        """Latency of a new demand request.

        With ``outstanding`` (vCPUs stalled right now) known and no fluid backlog, the wait uses
        the arrival theorem of a closed population instead of the open-system formula: of the S
        stalled vCPUs, a fraction w/L have their request still queued ahead, so
        w = c + S·tau·w / (b + w), c = residual + push window, b = rtt + tau + overhead.
        """
        b = self.rtt + self.tau + self.overhead
        if outstanding is None or self.backlog >= 1.0:
            return b + self.wait()
        push = self.push_active()
        resid = self.tau / 2 if push else min(self.rho_d, RHO_MAX) * self.tau / 2
        c = resid + self._window_wait()
        k = outstanding * self.tau
        q = b - c - k
        w = (-q + math.sqrt(q * q + 4 * c * b)) / 2
        return b + w

    def _window_wait(self) -> float:
        if self.fifo_mode and self.push_active():
            return min(self.window, self.missing_total) * self.tau
        return 0.0

    def window_mass(self) -> np.ndarray:
        """Per region: touch mass of the pages waiting in the push window (shared-fifo: they stay
        queued, so a fault on one waits for it instead of sending a request)."""
        out = np.zeros(self.nregions)
        if not (self.fifo_mode and self.push_active()) or self._group >= len(self.groups):
            return out
        sel = self.groups[self._group]
        miss = self.missing[sel]
        cnt = int(miss.sum())
        if cnt == 0:
            return out
        # a group lies in one region: np.add.at's sequential sum there is add.accumulate's last
        out[self._group_region[self._group]] = np.add.accumulate(
            min(self.window, cnt) * miss * self.tpp[sel] / cnt
        )[-1]
        return out

    def split_faults(self, faults: np.ndarray) -> np.ndarray:
        """Per region, how many of ``faults`` hit a page already requested or in the push window."""
        if not faults.any():
            return np.zeros_like(faults)
        queued = self.pending_mass * self.shared + self.window_mass()
        if not (queued > 0).any():
            return np.zeros_like(faults)
        mm = self.region_missing_mass()
        p = np.divide(queued, mm, out=np.zeros_like(mm), where=mm > 0)
        return self.rng.binomial(faults, np.minimum(np.maximum(p, 0.0), 1.0))  # np.clip's values

    def request(self, faults: np.ndarray, latency: float = 0.0) -> int:
        """Per region, touches of uncommitted pages now, each served in ``latency``; returns how
        many became new requests."""
        new_total = 0
        pages = 0.0
        mass = np.zeros(self.nregions)
        for r in np.flatnonzero(faults).tolist():
            sel = self._region_sel[r]
            w = self.missing[sel] * self.tpp[sel]
            tot = w.sum()
            if tot <= 0:
                continue
            draw = np.minimum(self.rng.multinomial(int(faults[r]), w / tot), self.missing[sel])
            new = int(draw.sum())
            if new == 0:
                continue
            self.missing[sel] -= draw
            self.missing_total -= new
            mass[r] += float((draw * self.tpp[sel]).sum())
            new_total += new
            pages += new
            if self.prefetch:
                extra = _take_proportional(self.missing[sel], self.prefetch * new, self.rng)
                self.missing[sel] -= extra
                self.missing_total -= int(extra.sum())
                mass[r] += float((extra * self.tpp[sel]).sum())
                self.counters.prefetched += int(extra.sum())
                pages += float(extra.sum())
        if new_total:
            self._mm = None
            self.pending_mass += mass
            self.pending.append((self.now + latency - self.overhead, mass))
            self.counters.requests += new_total
            self.counters.demanded += new_total
            self.backlog += pages
            self._arrivals += pages
        return new_total

    # -- the link -------------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        """Serve the link for ``dt`` seconds."""
        self._mm = None
        cap = dt / self.tau + self.carry
        self.rho_d += (1 - math.exp(-dt / RHO_TAU_S)) * (self._arrivals * self.tau / dt - self.rho_d)
        self._arrivals = 0.0
        push = self.push_active()
        if self.fifo_mode and push:
            wnd = min(self.window, self.missing_total)
            share = self.backlog / (self.backlog + wnd) if self.backlog > 0 else 0.0
            served = min(self.backlog, cap * share)
        else:
            served = min(self.backlog, cap)
        self.backlog -= served
        if self.backlog < 1e-9:
            self.backlog = 0.0
        budget = cap - served
        if push:
            n = min(int(budget), self.missing_total)
            self._push(n)
            self.carry = budget - n if self.push_active() else 0.0
        else:
            self.carry = 0.0
        self.now += dt
        while self.pending and self.pending[0][0] <= self.now:
            self.pending_mass -= self.pending.popleft()[1]
        if not self.pending:
            self.pending_mass[:] = 0.0
        if self.completed_at is None and self.backlog == 0.0 and self.missing_total == 0:
            # The last page left the source within this step; it lands rtt/2 later.
            self._complete(self.now + self.rtt / 2)

    def _complete(self, at: float) -> None:
        self.completed_at = at
        self.completed.succeed(delay=max(0.0, at - self.completed.env.now))

    def _push(self, n: int) -> None:
        left = n
        while left > 0 and self._group < len(self.groups):
            sel = self.groups[self._group]
            avail = self.missing[sel]
            if avail.sum() == 0:
                self._group += 1
                continue
            take = _take_proportional(avail, left, self.rng)
            self.missing[sel] -= take
            self.missing_total -= int(take.sum())
            got = int(take.sum())
            left -= got
            self.counters.pushed += got

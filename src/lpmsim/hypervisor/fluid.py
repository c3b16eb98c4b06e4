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
from lpmsim.guest.fluid_draws import binomial, jit, multinomial, seed_state, take_proportional
from lpmsim.hypervisor.exact import LinkCounters
from lpmsim.hypervisor.layout import Buckets

RHO_TAU_S = 0.05
RHO_MAX = 0.98


# -- compiled kernels (lpmsim.guest.fluid_draws: numba where installed, the same Python otherwise) --
@jit
def _missing_mass(
    region_of: np.ndarray, missing: np.ndarray, tpp: np.ndarray, pending: np.ndarray, shared: np.ndarray
) -> np.ndarray:
    """Per region: the touch mass of uncommitted pages plus that of requested ones (shared regions
    only), clipped to [0, 1]."""
    out = np.zeros(pending.size)
    for b in range(missing.size):
        out[region_of[b]] += missing[b] * tpp[b]
    for r in range(out.size):
        v = out[r] + (pending[r] if shared[r] else 0.0)
        out[r] = 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)
    return out


@jit
def _window_mass(
    sel: np.ndarray, missing: np.ndarray, tpp: np.ndarray, window: int, region: int, out: np.ndarray
) -> None:
    """The push window's touch mass: min(window, cnt) pages spread over the group's buckets in
    proportion to what they miss (``out[region]``)."""
    cnt = 0
    for b in sel:
        cnt += missing[b]
    if cnt == 0:
        return
    w = window if window < cnt else cnt
    acc = 0.0
    for b in sel:
        acc += w * missing[b] * tpp[b] / cnt
    out[region] = acc


@jit
def _split(st: np.ndarray, faults: np.ndarray, queued: np.ndarray, mm: np.ndarray, waits: np.ndarray) -> None:
    """Per region: of ``faults``, those on a page already requested or in the push window
    (binomial with the queued share of the missing mass)."""
    for r in range(faults.size):
        waits[r] = 0
        if faults[r] > 0 and mm[r] > 0.0 and queued[r] > 0.0:
            p = queued[r] / mm[r]
            waits[r] = binomial(st, faults[r], 1.0 if p > 1.0 else p)


@jit
def _request(
    st: np.ndarray,
    faults: np.ndarray,
    reg_start: np.ndarray,
    reg_idx: np.ndarray,
    missing: np.ndarray,
    tpp: np.ndarray,
    prefetch: int,
    mass: np.ndarray,
) -> tuple[int, int]:
    """Per region, ``faults[r]`` touches of its uncommitted pages (buckets drawn in proportion to
    their missing touch mass, capped by what they miss) become requests, each with ``prefetch``
    more pages taken proportionally; ``mass`` gets the requested touch mass per region.  Returns
    (new requests, prefetched pages)."""
    new_total = 0
    prefetched = 0
    for r in range(faults.size):
        mass[r] = 0.0
        if faults[r] <= 0:
            continue
        sel = reg_idx[reg_start[r] : reg_start[r + 1]]
        d = sel.size
        w = np.empty(d)
        tot = 0.0
        for j in range(d):
            w[j] = missing[sel[j]] * tpp[sel[j]]
            tot += w[j]
        if tot <= 0.0:
            continue
        draw = np.zeros(d, dtype=np.int64)
        multinomial(st, faults[r], w, draw)
        new = 0
        m = 0.0
        for j in range(d):
            x = draw[j]
            if x > missing[sel[j]]:
                x = missing[sel[j]]
            missing[sel[j]] -= x
            new += x
            m += x * tpp[sel[j]]
        if new == 0:
            continue
        new_total += new
        if prefetch:
            avail = np.empty(d, dtype=np.int64)
            for j in range(d):
                avail[j] = missing[sel[j]]
            take = np.zeros(d, dtype=np.int64)
            got = take_proportional(st, avail, prefetch * new, take, np.zeros(d))
            for j in range(d):
                missing[sel[j]] -= take[j]
                m += take[j] * tpp[sel[j]]
            prefetched += got
        mass[r] = m
    return new_total, prefetched


@jit
def _push(
    st: np.ndarray, n: int, group: int, grp_start: np.ndarray, grp_idx: np.ndarray, missing: np.ndarray
) -> tuple[int, int]:
    """Push ``n`` pages group after group, from group ``group`` on, each group's buckets drained in
    proportion to what they miss.  Returns (the group reached, pages pushed)."""
    left = n
    pushed = 0
    ngroups = grp_start.size - 1
    while left > 0 and group < ngroups:
        sel = grp_idx[grp_start[group] : grp_start[group + 1]]
        d = sel.size
        avail = np.empty(d, dtype=np.int64)
        cnt = 0
        for j in range(d):
            avail[j] = missing[sel[j]]
            cnt += avail[j]
        if cnt == 0:
            group += 1
            continue
        take = np.zeros(d, dtype=np.int64)
        got = take_proportional(st, avail, left, take, np.zeros(d))
        for j in range(d):
            missing[sel[j]] -= take[j]
        left -= got
        pushed += got
    return group, pushed


def _csr(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    start = np.zeros(len(groups) + 1, dtype=np.int64)
    start[1:] = np.cumsum([g.size for g in groups])
    idx = np.concatenate(groups).astype(np.int64) if groups else np.zeros(0, dtype=np.int64)
    return start, idx


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
        self._st = seed_state(rng)  # the kernels' generator, seeded from the named stream
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
        self._reg_start, self._reg_idx = _csr(self._region_sel)
        self._region_of = np.ascontiguousarray(self.region_of, dtype=np.int64)
        self._tpp = np.ascontiguousarray(self.tpp, dtype=np.float64)
        self._mm: np.ndarray | None = None
        self._arrivals = 0.0
        # Push groups, in push order: a whole region (pages scattered, so the push drains its
        # buckets in proportion to what they miss) or a single bucket (hottest first).
        if pf.push_order == "address":
            self.groups = [np.flatnonzero(buckets.region == r) for r in np.unique(buckets.region)]
        else:
            self.groups = [np.array([b]) for b in np.argsort(-self.tpp, kind="stable")]
        self._grp_start, self._grp_idx = _csr(self.groups)
        self._group = 0
        self._group_region = [int(self.region_of[g[0]]) for g in self.groups]  # each group's region
        if self.missing_total == 0:
            self._complete(start_s)

    # -- what a touch sees ---------------------------------------------------------------------
    def region_missing_mass(self) -> np.ndarray:
        """Per region: probability that a touch hits a page not resident (uncommitted or requested)."""
        if self._mm is None:
            self._mm = _missing_mass(self._region_of, self.missing, self._tpp, self.pending_mass, self.shared)
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
        g = self._group
        sel = self._grp_idx[self._grp_start[g] : self._grp_start[g + 1]]
        _window_mass(sel, self.missing, self._tpp, int(self.window), self._group_region[g], out)  # one region
        return out

    def split_faults(self, faults: np.ndarray) -> np.ndarray:
        """Per region, how many of ``faults`` hit a page already requested or in the push window."""
        waits = np.zeros(faults.size, dtype=np.int64)
        if not faults.any():
            return waits
        queued = self.pending_mass * self.shared + self.window_mass()
        _split(
            self._st, np.ascontiguousarray(faults, dtype=np.int64), queued, self.region_missing_mass(), waits
        )
        return waits

    def request(self, faults: np.ndarray, latency: float = 0.0) -> int:
        """Per region, touches of uncommitted pages now, each served in ``latency``; returns how
        many became new requests."""
        mass = np.zeros(self.nregions)
        new_total, prefetched = _request(
            self._st,
            np.ascontiguousarray(faults, dtype=np.int64),
            self._reg_start,
            self._reg_idx,
            self.missing,
            self._tpp,
            int(self.prefetch),
            mass,
        )
        self.missing_total -= new_total + prefetched
        self.counters.prefetched += prefetched
        pages = float(new_total + prefetched)
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
        self._group, got = _push(self._st, int(n), self._group, self._grp_start, self._grp_idx, self.missing)
        self.missing_total -= got
        self.counters.pushed += got

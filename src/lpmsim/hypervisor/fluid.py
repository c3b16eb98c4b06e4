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

The per-step work (``k_latency``, ``k_missing_mass``, ``k_serve``: split, request, serve the link,
push) is compiled with numba where installed and runs as the same Python otherwise; its
multinomial and binomial draws are inversions of uniforms from a generator seeded from the
transfer's named stream (``lpmsim.guest.fluid_draws``).  The state those kernels change is kept in
small arrays (``_fs``, ``_ist``, the pending ring ``_pend_t``/``_pend_m``); the attributes of the
same names (``backlog``, ``missing_total``, ``rho_d``, ``now``, ``pending``) read them.
"""

from __future__ import annotations

import math

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
def k_missing_mass(
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


@jit
def _queued(
    fifo_push: bool,
    group: int,
    grp_start: np.ndarray,
    grp_idx: np.ndarray,
    group_region: np.ndarray,
    missing: np.ndarray,
    tpp: np.ndarray,
    window: int,
    pending_mass: np.ndarray,
    shared: np.ndarray,
    out: np.ndarray,
) -> None:
    """Per region, the touch mass of pages a fault can find already on their way: requested
    (shared regions) or, shared-fifo while the push runs, waiting in the push window."""
    for r in range(out.size):
        out[r] = pending_mass[r] if shared[r] else 0.0
    if fifo_push and group < grp_start.size - 1:
        wm = np.zeros(out.size)
        _window_mass(
            grp_idx[grp_start[group] : grp_start[group + 1]], missing, tpp, window, group_region[group], wm
        )
        for r in range(out.size):
            out[r] += wm[r]


@jit
def _enqueue(
    fs: np.ndarray,
    ist: np.ndarray,
    pend_t: np.ndarray,
    pend_m: np.ndarray,
    pending_mass: np.ndarray,
    t: float,
    mass: np.ndarray,
) -> None:
    """A batch of requests whose touch mass ``mass`` lands at ``t`` (a ring buffer, in time order)."""
    cap = pend_t.size
    j = (ist[2] + ist[3]) % cap
    pend_t[j] = t
    for r in range(mass.size):
        pend_m[j, r] = mass[r]
        pending_mass[r] += mass[r]
    ist[3] += 1


@jit
def _link(
    st: np.ndarray,
    dt: float,
    fs: np.ndarray,
    ist: np.ndarray,
    cnt: np.ndarray,
    cf: np.ndarray,
    ci: np.ndarray,
    grp_start: np.ndarray,
    grp_idx: np.ndarray,
    missing: np.ndarray,
    pend_t: np.ndarray,
    pend_m: np.ndarray,
    pending_mass: np.ndarray,
) -> bool:
    """Serve the link for ``dt`` (``FluidTransfer.step``).  Returns whether the last page left the
    source in this step."""
    tau = cf[0]
    fifo = ci[1] != 0
    push_enabled = ci[2] != 0
    backlog = fs[0]
    cap = dt / tau + fs[2]
    # demand utilisation, exponentially weighted over RHO_TAU_S
    fs[1] += (1 - math.exp(-dt / RHO_TAU_S)) * (fs[4] * tau / dt - fs[1])
    fs[4] = 0.0
    push = push_enabled and ist[0] > 0
    if fifo and push:
        wnd = ci[0] if ci[0] < ist[0] else ist[0]
        share = backlog / (backlog + wnd) if backlog > 0 else 0.0
        served = min(backlog, cap * share)
    else:
        served = min(backlog, cap)
    backlog -= served
    if backlog < 1e-9:
        backlog = 0.0
    fs[0] = backlog
    budget = cap - served
    if push:
        n = min(int(budget), ist[0])
        group, got = _push(st, n, ist[1], grp_start, grp_idx, missing)
        ist[1] = group
        ist[0] -= got
        cnt[2] += got
        fs[2] = budget - n if (push_enabled and ist[0] > 0) else 0.0
    else:
        fs[2] = 0.0
    fs[3] += dt
    now = fs[3]
    size = pend_t.size
    while ist[3] > 0 and pend_t[ist[2]] <= now:
        j = ist[2]
        for r in range(pending_mass.size):
            pending_mass[r] -= pend_m[j, r]
        ist[2] = (j + 1) % size
        ist[3] -= 1
    if ist[3] == 0:
        pending_mass[:] = 0.0
    return fs[0] == 0.0 and ist[0] == 0


@jit
def _request_all(
    st: np.ndarray,
    faults: np.ndarray,
    lat: float,
    fs: np.ndarray,
    ist: np.ndarray,
    cnt: np.ndarray,
    cf: np.ndarray,
    ci: np.ndarray,
    reg_start: np.ndarray,
    reg_idx: np.ndarray,
    missing: np.ndarray,
    tpp: np.ndarray,
    pend_t: np.ndarray,
    pend_m: np.ndarray,
    pending_mass: np.ndarray,
) -> int:
    """``FluidTransfer.request``: the new requests join the backlog, their touch mass stays pending
    until they land.  Returns how many became new requests."""
    mass = np.zeros(pending_mass.size)
    new_total, prefetched = _request(st, faults, reg_start, reg_idx, missing, tpp, ci[3], mass)
    ist[0] -= new_total + prefetched
    cnt[1] += prefetched
    if new_total:
        _enqueue(fs, ist, pend_t, pend_m, pending_mass, fs[3] + lat - cf[1], mass)
        cnt[0] += new_total
        pages = float(new_total + prefetched)
        fs[0] += pages
        fs[4] += pages
    return new_total


@jit
def k_serve(
    st: np.ndarray,
    faults: np.ndarray,
    lat: float,
    dt: float,
    fs: np.ndarray,
    ist: np.ndarray,
    cnt: np.ndarray,
    cf: np.ndarray,
    ci: np.ndarray,
    region_of: np.ndarray,
    tpp: np.ndarray,
    shared: np.ndarray,
    reg_start: np.ndarray,
    reg_idx: np.ndarray,
    grp_start: np.ndarray,
    grp_idx: np.ndarray,
    group_region: np.ndarray,
    missing: np.ndarray,
    pend_t: np.ndarray,
    pend_m: np.ndarray,
    pending_mass: np.ndarray,
    mm: np.ndarray,
) -> bool:
    """A fluid step's transfer in one call: ``split_faults``, ``request`` of the rest at ``lat``,
    then ``step(dt)``; ``mm`` is ``region_missing_mass`` now.  Returns whether the last page left
    the source."""
    any_fault = False
    for r in range(faults.size):
        if faults[r] > 0:
            any_fault = True
    if any_fault:
        nreg = pending_mass.size
        queued = np.zeros(nreg)
        push = ci[2] != 0 and ist[0] > 0
        _queued(
            ci[1] != 0 and push,
            ist[1],
            grp_start,
            grp_idx,
            group_region,
            missing,
            tpp,
            ci[0],
            pending_mass,
            shared,
            queued,
        )
        waits = np.zeros(nreg, dtype=np.int64)
        _split(st, faults, queued, mm, waits)
        req = faults - waits
        _request_all(
            st, req, lat, fs, ist, cnt, cf, ci, reg_start, reg_idx, missing, tpp, pend_t, pend_m, pending_mass
        )
    return _link(st, dt, fs, ist, cnt, cf, ci, grp_start, grp_idx, missing, pend_t, pend_m, pending_mass)


@jit
def k_latency(
    fs: np.ndarray, ist: np.ndarray, cf: np.ndarray, ci: np.ndarray, outstanding: float, closed: bool
) -> float:
    """``FluidTransfer.latency`` (``outstanding`` used only when ``closed``)."""
    tau = cf[0]
    backlog = fs[0]
    rho_d = fs[1]
    push = ci[2] != 0 and ist[0] > 0
    ww = (ci[0] if ci[0] < ist[0] else ist[0]) * tau if (ci[1] != 0 and push) else 0.0  # push window
    b = cf[2] + tau + cf[1]
    if not closed or backlog >= 1.0:
        if backlog >= 1.0:
            w = backlog * tau + tau / 2
        else:
            rho = rho_d if rho_d < RHO_MAX else RHO_MAX
            r = tau / 2 if push else rho * tau / 2
            w = r / (1.0 - rho)
        return b + (w + ww)
    resid = tau / 2 if push else (rho_d if rho_d < RHO_MAX else RHO_MAX) * tau / 2
    c = resid + ww
    k = outstanding * tau
    q = b - c - k
    w = (-q + math.sqrt(q * q + 4 * c * b)) / 2
    return b + w


def _csr(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    start = np.zeros(len(groups) + 1, dtype=np.int64)
    start[1:] = np.cumsum([g.size for g in groups])
    idx = np.concatenate(groups).astype(np.int64) if groups else np.zeros(0, dtype=np.int64)
    return start, idx


class FluidTransfer:
    """Post-copy state of the fluid mode.

    The state the kernels change lives in small arrays (``_fs``: backlog, rho_d, carry, now,
    arrivals; ``_ist``: missing total, push group, pending ring head and count); the attributes of
    the same names read and write them."""

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
        self._fs = np.zeros(5)
        self._ist = np.zeros(4, dtype=np.int64)
        self._cnt = np.zeros(3, dtype=np.int64)  # requests, prefetched, pushed not yet in counters
        self.missing_total = int(self.missing.sum())  # kept in step with ``missing``
        self.tau = scenario.page_time_s
        self.rtt = pf.rtt_us * 1e-6
        self.overhead = pf.fault_overhead_us * 1e-6
        self.window = pf.push_window_pages
        self.fifo_mode = pf.discipline == "shared-fifo"
        self.prefetch = pf.prefetch_pages
        self.push_enabled = pf.background_push
        self._cf = np.array([self.tau, self.overhead, self.rtt])
        self._ci = np.array([self.window, self.fifo_mode, self.push_enabled, self.prefetch], dtype=np.int64)
        # Touch mass (per region) of requested pages that have not arrived yet, released when they
        # land: a ring buffer of (landing time, mass per region), in time order.
        self.nregions = int(buckets.region.max()) + 1 if buckets.region.size else 0
        self._pend_t = np.zeros(64)
        self._pend_m = np.zeros((64, self.nregions))
        self.pending_mass = np.zeros(self.nregions)
        # Per-CPU regions: a requested page is touched only by the vCPU that asked for it, which is
        # stalled until it lands, so it is invisible to every other vCPU.
        self.shared = np.ones(self.nregions, dtype=bool) if shared is None else np.asarray(shared, dtype=bool)
        self.counters = LinkCounters()
        self.completed_at: float | None = None
        self.completed: Event = (env or Environment(start_s)).event()
        self.now = start_s
        self.region_of = buckets.region
        # each region's buckets, and the per-region missing touch mass while nothing changed
        # (``missing`` and ``pending_mass`` change only in ``request`` and ``step``, which drop it)
        self._region_sel = [np.flatnonzero(self.region_of == r) for r in range(self.nregions)]
        self._reg_start, self._reg_idx = _csr(self._region_sel)
        self._region_of = np.ascontiguousarray(self.region_of, dtype=np.int64)
        self._tpp = np.ascontiguousarray(self.tpp, dtype=np.float64)
        self._mm: np.ndarray | None = None
        # Push groups, in push order: a whole region (pages scattered, so the push drains its
        # buckets in proportion to what they miss) or a single bucket (hottest first).
        if pf.push_order == "address":
            self.groups = [np.flatnonzero(buckets.region == r) for r in np.unique(buckets.region)]
        else:
            self.groups = [np.array([b]) for b in np.argsort(-self.tpp, kind="stable")]
        self._grp_start, self._grp_idx = _csr(self.groups)
        self._group_region = np.array([int(self.region_of[g[0]]) for g in self.groups], dtype=np.int64)
        if self.missing_total == 0:
            self._complete(start_s)

    # -- the state the kernels keep in arrays ---------------------------------------------------
    @property
    def backlog(self) -> float:
        """Demand pages queued at the link (a fluid queue)."""
        return float(self._fs[0])

    @backlog.setter
    def backlog(self, v: float) -> None:
        self._fs[0] = v

    @property
    def rho_d(self) -> float:
        """Demand utilisation, exponentially weighted over ``RHO_TAU_S``."""
        return float(self._fs[1])

    @rho_d.setter
    def rho_d(self, v: float) -> None:
        self._fs[1] = v

    @property
    def carry(self) -> float:
        return float(self._fs[2])

    @property
    def now(self) -> float:
        return float(self._fs[3])

    @now.setter
    def now(self, v: float) -> None:
        self._fs[3] = v

    @property
    def missing_total(self) -> int:
        """Pages not yet committed to the link (``missing.sum()``)."""
        return int(self._ist[0])

    @missing_total.setter
    def missing_total(self, v: int) -> None:
        self._ist[0] = v

    @property
    def pending(self) -> list[tuple[float, np.ndarray]]:
        """Requests on their way: (landing time, touch mass per region), in time order."""
        cap = self._pend_t.size
        h, c = int(self._ist[2]), int(self._ist[3])
        return [(float(self._pend_t[(h + j) % cap]), self._pend_m[(h + j) % cap].copy()) for j in range(c)]

    def _room(self) -> None:
        """Room for one more pending batch (the ring doubles when full)."""
        cap = self._pend_t.size
        c = int(self._ist[3])
        if c < cap:
            return
        order = (int(self._ist[2]) + np.arange(c)) % cap
        t = np.zeros(2 * cap)
        m = np.zeros((2 * cap, self.nregions))
        t[:c] = self._pend_t[order]
        m[:c] = self._pend_m[order]
        self._pend_t, self._pend_m = t, m
        self._ist[2] = 0

    def _sync_counters(self) -> None:
        c = self._cnt
        req, pre, push = c.tolist()
        if req or pre or push:
            self.counters.requests += req
            self.counters.demanded += req
            self.counters.prefetched += pre
            self.counters.pushed += push
            c[:] = 0

    # -- what a touch sees ---------------------------------------------------------------------
    def region_missing_mass(self) -> np.ndarray:
        """Per region: probability that a touch hits a page not resident (uncommitted or requested)."""
        if self._mm is None:
            self._mm = k_missing_mass(
                self._region_of, self.missing, self._tpp, self.pending_mass, self.shared
            )
            self._mm.flags.writeable = False
        return self._mm

    def push_active(self) -> bool:
        return self.push_enabled and self._ist[0] > 0

    def wait(self) -> float:
        """Queueing of a new demand request (open system): the latency less rtt, tau, overhead."""
        return self.latency() - (self.rtt + self.tau + self.overhead)

    def latency(self, outstanding: float | None = None) -> float:
        """Latency of a new demand request (``k_latency``).

        rtt + tau + overhead + waiting; waiting (demand-first) is backlog·tau + tau/2 when demand
        is queued, otherwise the non-preemptive priority (Cobham) mean R / (1 - rho_d), R = tau/2
        while the push runs (rho_d·tau/2 otherwise); shared-fifo adds the push window ahead.
        With ``outstanding`` (vCPUs stalled right now) known and no fluid backlog, the wait uses
        the arrival theorem of a closed population instead of the open-system formula: of the S
        stalled vCPUs, a fraction w/L have their request still queued ahead, so
        w = c + S·tau·w / (b + w), c = residual + push window, b = rtt + tau + overhead.
        """
        if outstanding is None:
            return float(k_latency(self._fs, self._ist, self._cf, self._ci, 0.0, False))
        return float(k_latency(self._fs, self._ist, self._cf, self._ci, outstanding, True))

    def _window_wait(self) -> float:
        if self.fifo_mode and self.push_active():
            return min(self.window, self.missing_total) * self.tau
        return 0.0

    def window_mass(self) -> np.ndarray:
        """Per region: touch mass of the pages waiting in the push window (shared-fifo: they stay
        queued, so a fault on one waits for it instead of sending a request)."""
        out = np.zeros(self.nregions)
        g = int(self._ist[1])
        if not (self.fifo_mode and self.push_active()) or g >= len(self.groups):
            return out
        sel = self._grp_idx[self._grp_start[g] : self._grp_start[g + 1]]
        _window_mass(
            sel, self.missing, self._tpp, int(self.window), int(self._group_region[g]), out
        )  # one region
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
        self._room()
        new_total = _request_all(
            self._st,
            np.ascontiguousarray(faults, dtype=np.int64),
            latency,
            self._fs,
            self._ist,
            self._cnt,
            self._cf,
            self._ci,
            self._reg_start,
            self._reg_idx,
            self.missing,
            self._tpp,
            self._pend_t,
            self._pend_m,
            self.pending_mass,
        )
        self._mm = None
        self._sync_counters()
        return int(new_total)

    def serve(self, faults: np.ndarray, latency: float, dt: float) -> None:
        """A fluid step in one call: ``request(faults - split_faults(faults), latency)``, then
        ``step(dt)`` (the same operations, compiled together)."""
        self._room()
        self._mm = None
        done = k_serve(
            self._st,
            faults,
            latency,
            dt,
            self._fs,
            self._ist,
            self._cnt,
            self._cf,
            self._ci,
            self._region_of,
            self._tpp,
            self.shared,
            self._reg_start,
            self._reg_idx,
            self._grp_start,
            self._grp_idx,
            self._group_region,
            self.missing,
            self._pend_t,
            self._pend_m,
            self.pending_mass,
            k_missing_mass(self._region_of, self.missing, self._tpp, self.pending_mass, self.shared),
        )
        self._sync_counters()
        if done and self.completed_at is None:
            # The last page left the source within this step; it lands rtt/2 later.
            self._complete(self.now + self.rtt / 2)

    def stepped(self, done: bool) -> None:
        """After the compiled step (``lpmsim.guest.fluid_kernel.fluid_step``) changed the state."""
        self._mm = None
        self._sync_counters()
        if done and self.completed_at is None:
            # The last page left the source within this step; it lands rtt/2 later.
            self._complete(self.now + self.rtt / 2)

    # -- the link -------------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        """Serve the link for ``dt`` seconds."""
        self._mm = None
        done = _link(
            self._st,
            dt,
            self._fs,
            self._ist,
            self._cnt,
            self._cf,
            self._ci,
            self._grp_start,
            self._grp_idx,
            self.missing,
            self._pend_t,
            self._pend_m,
            self.pending_mass,
        )
        self._sync_counters()
        if done and self.completed_at is None:
            # The last page left the source within this step; it lands rtt/2 later.
            self._complete(self.now + self.rtt / 2)

    def _complete(self, at: float) -> None:
        self.completed_at = at
        self.completed.succeed(delay=max(0.0, at - self.completed.env.now))

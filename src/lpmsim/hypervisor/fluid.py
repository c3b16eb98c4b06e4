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
  link's capacity of the step (dt/tau, not the push's carried fraction) is shared in proportion to
  the queue's composition (demand backlog vs push window); the backlog a new request waits behind
  (``queued``) is then the one before the step's service.

Demand utilisation rho_d is an exponentially weighted estimate over ``RHO_TAU_S``.  Differences
from ``exact`` (documented in docs/model/transfer.md): pages inside a bucket are equally hot; a
committed page's touch mass leaves the bucket when it is committed, not when it arrives; a fault
on a page already committed is counted as a fault that waits, without a new request.

The per-step work (``lpmsim.guest.fluid_link``: ``k_latency``, ``k_missing_mass``, ``k_serve``:
split, request, serve the link, push; imported on first use) is compiled with numba where installed and runs as the same Python otherwise; its
multinomial and binomial draws are inversions of uniforms from a generator seeded from the
transfer's named stream (``lpmsim.guest.fluid_draws``).  The state those kernels change is kept in
small arrays (``_fs``, ``_ist``, the pending ring ``_pend_t``/``_pend_m``); the attributes of the
same names (``backlog``, ``missing_total``, ``rho_d``, ``now``, ``pending``) read them.
"""

from __future__ import annotations

import numpy as np

from lpmsim.config.scenario import Scenario
from lpmsim.engine.core import Environment, Event
from lpmsim.hypervisor.exact import LinkCounters
from lpmsim.hypervisor.layout import Buckets

RHO_TAU_S = 0.05
RHO_MAX = 0.98


def _csr(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    start = np.zeros(len(groups) + 1, dtype=np.int64)
    start[1:] = np.cumsum([g.size for g in groups])
    idx = np.concatenate(groups).astype(np.int64) if groups else np.zeros(0, dtype=np.int64)
    return start, idx


class FluidTransfer:
    """Post-copy state of the fluid mode.

    The state the kernels change lives in small arrays (``_fs``: backlog, rho_d, carry, now,
    arrivals, queued; ``_ist``: missing total, push group, pending ring head and count); the attributes of
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
        from lpmsim.guest import fluid_link
        from lpmsim.guest.fluid_draws import seed_state

        self._k = fluid_link  # the compiled kernels (imported here: numba loads on first use)
        self.rng = rng
        self._st = seed_state(rng)  # the kernels' generator, seeded from the named stream
        self.buckets = buckets
        self.tpp = buckets.touch_per_page
        self.missing = missing.astype(np.int64).copy()
        self._fs = np.zeros(6)
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
        self._sf, self._si = fluid_link.scratch(self.missing.size, self.nregions)  # the kernels' scratch
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
    def queued(self) -> float:
        """The demand pages a new request finds queued ahead of it (``step`` sets it): under
        shared-fifo with the push active, the backlog before the step's service; elsewhere the
        backlog after it."""
        return float(self._fs[5])

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
            self._mm = self._k.k_missing_mass(
                self._region_of, self.missing, self._tpp, self.pending_mass, self.shared
            )
            self._mm.flags.writeable = False
        return self._mm

    def push_ahead(self, region: int) -> tuple[float, float]:
        """(pages the push sends before it reaches ``region``, pages per second it sends): the
        push group order from the current group on; the push's share of the link is, as in
        ``step``, W/(W + queued) under shared-fifo and 1 - rho_d under demand-first.  The push
        takes nothing more from a region it has passed (rate 0 if idle)."""
        if not self.push_active():
            return 0.0, 0.0
        if self.fifo_mode:
            wnd = min(self.window, self.missing_total)
            share = wnd / (wnd + self.queued)
        else:
            share = 1.0 - min(self.rho_d, RHO_MAX)
        ahead = 0
        for g in range(int(self._ist[1]), len(self.groups)):
            if self._group_region[g] == region:
                return float(ahead), share / self.tau
            ahead += int(self.missing[self.groups[g]].sum())
        return 0.0, 0.0

    def push_active(self) -> bool:
        return self.push_enabled and self._ist[0] > 0

    def wait(self) -> float:
        """Queueing of a new demand request (open system): the latency less rtt, tau, overhead."""
        return self.latency() - (self.rtt + self.tau + self.overhead)

    def latency(self, outstanding: float | None = None) -> float:
        """Latency of a new demand request (``k_latency``).

        rtt + tau + overhead + waiting; waiting (demand-first) is queued·tau + tau/2 when demand
        is queued (``queued``: under shared-fifo with the push active the backlog before the last
        step's service, what an arriving request finds in the exact link's FIFO), otherwise the
        non-preemptive priority (Cobham) mean R / (1 - rho_d), R = tau/2 while the push runs
        (rho_d·tau/2 otherwise); shared-fifo adds the push window ahead.
        With ``outstanding`` (vCPUs stalled right now) known and no fluid backlog, the wait uses
        the arrival theorem of a closed population instead of the open-system formula: of the S
        stalled vCPUs, a fraction w/L have their request still queued ahead, so
        w = c + S·tau·w / (b + w), c = residual + push window, b = rtt + tau + overhead.
        """
        if outstanding is None:
            return float(self._k.k_latency(self._fs, self._ist, self._cf, self._ci, 0.0, False))
        return float(self._k.k_latency(self._fs, self._ist, self._cf, self._ci, outstanding, True))

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
        self._k._window_mass(
            sel, self.missing, self._tpp, int(self.window), int(self._group_region[g]), out
        )  # one region
        return out

    def split_faults(self, faults: np.ndarray) -> np.ndarray:
        """Per region, how many of ``faults`` hit a page already requested or in the push window."""
        waits = np.zeros(faults.size, dtype=np.int64)
        if not faults.any():
            return waits
        queued = self.pending_mass * self.shared + self.window_mass()
        self._k._split(
            self._st, np.ascontiguousarray(faults, dtype=np.int64), queued, self.region_missing_mass(), waits
        )
        return waits

    def request(self, faults: np.ndarray, latency: float = 0.0) -> int:
        """Per region, touches of uncommitted pages now, each served in ``latency``; returns how
        many became new requests."""
        self._room()
        new_total = self._k._request_all(
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
            self._sf,
            self._si,
        )
        self._mm = None
        self._sync_counters()
        return int(new_total)

    def serve(self, faults: np.ndarray, latency: float, dt: float) -> None:
        """A fluid step in one call: ``request(faults - split_faults(faults), latency)``, then
        ``step(dt)`` (the same operations, compiled together)."""
        self._room()
        self._mm = None
        done = self._k.k_serve(
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
            self._k.k_missing_mass(self._region_of, self.missing, self._tpp, self.pending_mass, self.shared),
            self._sf,
            self._si,
        )
        self._sync_counters()
        if done and self.completed_at is None:
            # The last page left the source within this step; it lands rtt/2 later.
            self._complete(self.now + self.rtt / 2)

    def stepped(self, done: bool, req: int, pre: int, push: int) -> None:
        """After compiled steps (``lpmsim.guest.fluid_kernel.fluid_batch``) changed the state:
        ``req``, ``pre``, ``push``, the counts they took out of ``_cnt`` (requests, prefetched and
        pushed pages), go to the counters, as ``_sync_counters`` adds them."""
        self._mm = None
        if req or pre or push:
            c = self.counters
            c.requests += req
            c.demanded += req
            c.prefetched += pre
            c.pushed += push
        if done and self.completed_at is None:
            # The last page left the source within this step; it lands rtt/2 later.
            self._complete(self.now + self.rtt / 2)

    # -- the link -------------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        """Serve the link for ``dt`` seconds."""
        self._mm = None
        done = self._k._link(
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
            self._sf,
            self._si,
        )
        self._sync_counters()
        if done and self.completed_at is None:
            # The last page left the source within this step; it lands rtt/2 later.
            self._complete(self.now + self.rtt / 2)

    def _complete(self, at: float) -> None:
        self.completed_at = at
        self.completed.succeed(delay=max(0.0, at - self.completed.env.now))

"""Page-exact post-copy: every page's state, the link's queue, and each demand fault.

Page states: ``RESIDENT`` (on the destination), ``MISSING`` (still only on the source, nobody
asked for it), ``COMMITTED`` (requested by a fault, queued for the push, on the wire or in flight
back).  A page moves MISSING -> COMMITTED -> RESIDENT exactly once: it is sent once.

The link (one server, one page per ``tau = page_bytes / bandwidth``) holds:

* the **push window**: the background push keeps ``push_window_pages`` pages queued (committed in
  push order, skipping pages already requested);
* **demand requests**: a fault on a MISSING page sends a request that reaches the source after
  rtt/2 and joins the queue — behind everything already queued (``shared-fifo``), or ahead of
  the push window, behind earlier demand requests, never preempting the page on the wire
  (``demand-first``) — followed by up to ``prefetch_pages`` next missing neighbours;
* a fault on a COMMITTED page waits for that page (one request per page).  Under
  ``demand-first`` a page waiting in the push window is moved to the demand queue.

A page sent at the end of its slot ``e`` arrives at ``e + rtt/2``; a faulting vCPU resumes at
arrival + ``fault_overhead``.  With the link idle the latency is exactly rtt + tau + overhead;
every extra microsecond is queueing.  Nothing is drawn from a latency distribution.

The link is advanced lazily (``advance(t)``), one slot at a time, whenever someone looks at it;
arrival times of waited-on pages are fixed when the wait starts, because nothing can overtake a
page once it is in the demand queue or, under shared-fifo, in the FIFO.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any, Protocol

import numpy as np

from lpmsim.config.scenario import Scenario
from lpmsim.engine.core import Environment, Event


class _Floats(Protocol):
    """A memoryview of a float64 array (``_cells``): one element read or written as a float."""

    def __getitem__(self, i: int, /) -> float: ...

    def __setitem__(self, i: int, v: float, /) -> None: ...


class _Ints(Protocol):
    """A memoryview of an integer array (``_cells``): one element read or written as an int."""

    def __getitem__(self, i: int, /) -> int: ...

    def __setitem__(self, i: int, v: int, /) -> None: ...

    def __len__(self) -> int: ...


def _cells(a: np.ndarray) -> Any:
    """A memoryview of ``a`` (its buffer, not a copy): indexing one element reads or writes a
    Python int or float (~30 ns) where numpy's scalar indexing makes a numpy scalar (~100 ns)."""
    return a.data


class _Uniform(Protocol):
    """Where ``sample_missing`` takes its two uniforms: a numpy ``Generator`` or a vCPU's draws."""

    def random(self) -> float: ...


RESIDENT = 0
MISSING = 1
COMMITTED = 2

BLOCK = 4096

_INF = float("inf")

COMPILED_AFTER = 4096
"""``sample_missing`` uses the numpy calls (``cum_search_np``) for this many draws of a run, then
the compiled ``exact_kernel.cum_search`` (imported then: importing numba costs ~0.2 s of CPU, and
the first call of a compiled function in a process ~0.3 s more, numba's own start: its type
system and LLVM, loading the cached code), which a short run (``small``: ~3,300 draws) would not
win back.  The same floats and pages either way."""


def cum_search_np(x: np.ndarray, out: np.ndarray, lo: int, mid: int, hi: int, u: float) -> int:
    """``out[lo:hi] = cumsum(x[lo:hi])`` where ``out[lo:mid]`` is already right (``mid == hi``:
    nothing to do), then ``min(searchsorted(out[lo:hi], u * out[hi - 1], "right"), hi - lo - 1)``.
    numpy calls: the running sum restarted from ``out[mid - 1]`` (``x`` is left as it was)."""
    if mid < hi:
        if mid > lo:
            v = x[mid]
            x[mid] = v + out[mid - 1]
            np.cumsum(x[mid:hi], out=out[mid:hi])
            x[mid] = v
        else:
            np.cumsum(x[mid:hi], out=out[mid:hi])
    cw = out[lo:hi]
    return min(int(cw.searchsorted(u * cw[-1], side="right")), cw.size - 1)


class ExactPages:
    """Page states plus, per region and per block of pages, the touch mass not yet resident.

    Touch probabilities are normalised per region, so ``region_missing_mass(r)`` is the
    probability that one touch of region r hits a page that is not on the destination.
    Blocks never straddle regions, so a region's blocks are a contiguous range.

    Speed without changing a single draw: the masses and counts per block and region are Python
    lists updated page by page (the same float subtractions, in the same order, as the
    ``np.subtract.at`` over numpy arrays they replace), and ``sample_missing`` keeps each region's
    cumulative block weights and each block's cumulative page weights, recomputing only the tail
    after the first entry that changed (a running sum restarted from the last valid entry gives
    the same floats as the whole cumsum).
    """

    def __init__(
        self, touch_prob: np.ndarray, missing: np.ndarray, starts: np.ndarray, counts: np.ndarray
    ) -> None:
        self.touch_prob = touch_prob
        self.state = np.where(missing, MISSING, RESIDENT).astype(np.int8)
        self.starts = starts
        self.counts = counts
        nb = (counts + BLOCK - 1) // BLOCK
        self.boff = np.concatenate(([0], np.cumsum(nb))).astype(np.int64)
        idx = np.flatnonzero(missing)
        blocks, regions = self._locate(idx)
        nblocks = int(self.boff[-1])
        bmass = np.bincount(blocks, weights=touch_prob[idx], minlength=nblocks)
        bcount = np.bincount(blocks, minlength=nblocks)
        self.block_mass: list[float] = bmass.tolist()
        self.block_count: list[int] = bcount.tolist()
        self.region_mass: list[float] = np.bincount(
            regions, weights=touch_prob[idx], minlength=counts.size
        ).tolist()
        self.region_count: list[int] = np.bincount(regions, minlength=counts.size).tolist()
        self.not_resident = int(idx.size)
        # Regions that became wholly resident (their missing mass stays 0.0): a count, so that
        # the guest knows when to drop them from its touch-mass sums (``vcpu._Touch.prune``).
        self.regions_done = 0
        self.uncommitted = int(idx.size)
        self._starts: list[int] = [int(x) for x in starts]
        self._boff: list[int] = [int(x) for x in self.boff]
        self._ends: list[int] = [int(x) for x in starts + counts]
        # ``mm[r]`` is ``region_missing_mass(r)``, kept up to date by ``mark_resident``.
        self.mm: list[float] = [self._region_mm(r) for r in range(counts.size)]
        # Per block its non-resident mass (0 for an empty block), as ``sample_missing`` weighs it.
        self.block_live = np.where(bcount > 0, np.maximum(bmass, 0.0), 0.0)
        # Cumulative weights and, per region / per block, the offset from which they are stale
        # (0: never computed).  ``_page_cum`` is only written for blocks that are sampled.
        self._block_cum = np.zeros(nblocks)
        self._block_cum_from = [0] * counts.size
        self._page_cum = np.empty(touch_prob.size)
        # Per page its touch probability while not resident, 0 once resident: the page weights.
        self._page_live = np.where(missing, touch_prob, 0.0)
        self._page_cum_from = [0] * nblocks
        # Memoryviews of the per-page and per-block arrays, for one element at a time (``_cells``).
        self.state_mv: _Ints = _cells(self.state)
        self._tp_mv: _Floats = _cells(self.touch_prob)
        self._live_mv: _Floats = _cells(self._page_live)
        self._blive_mv: _Floats = _cells(self.block_live)
        self.draws = 0  # ``sample_missing`` calls so far (``COMPILED_AFTER``)
        self._search: Callable[[np.ndarray, np.ndarray, int, int, int, float], int] = cum_search_np
        self._compiled = False
        # What ``mark_resident`` updates, in one tuple (one attribute load per call)
        self._mr = (
            self.state_mv,
            self._tp_mv,
            self._live_mv,
            self.block_mass,
            self.block_count,
            self.region_mass,
            self.region_count,
            self._blive_mv,
            self._starts,
            self._boff,
            self._block_cum_from,
            self._page_cum_from,
        )

    def _locate(self, pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = np.searchsorted(self.starts, pages, side="right") - 1
        return self.boff[r] + (pages - self.starts[r]) // BLOCK, r

    def _region_mm(self, region: int) -> float:
        return max(0.0, self.region_mass[region]) if self.region_count[region] > 0 else 0.0

    def region_missing_mass(self, region: int) -> float:
        """Probability that a touch of ``region`` hits a page that is not resident."""
        return self.mm[region]

    def mark_resident(self, pages: list[int]) -> None:
        """``pages`` arrived (in this order); none of them was resident."""
        state, tp, live, bmass, bcount, rmass, rcount, blive, starts, boff, bfrom, pfrom = self._mr
        touched: list[int] = []
        for p in pages:
            state[p] = RESIDENT
            live[p] = 0.0
            r = bisect_right(starts, p) - 1
            off = p - starts[r]
            jb = off // BLOCK  # the block within the region
            b = boff[r] + jb
            w = tp[p]
            bm = bmass[b] - w
            bmass[b] = bm
            bc = bcount[b] - 1
            bcount[b] = bc
            # the block's weight for ``sample_missing``, ``max(0.0, bm) if bc > 0 else 0.0``; set
            # at each of its pages, the last one gives the value of the whole call
            blive[b] = (bm if bm > 0.0 else 0.0) if bc > 0 else 0.0
            rmass[r] -= w
            rcount[r] -= 1
            if r not in touched:
                touched.append(r)
            j = off - jb * BLOCK
            if j < pfrom[b]:
                pfrom[b] = j
            if jb < bfrom[r]:
                bfrom[r] = jb
        self.not_resident -= len(pages)
        mm = self.mm
        for r in touched:
            if rcount[r] > 0:
                m = rmass[r]
                mm[r] = m if m > 0.0 else 0.0  # ``_region_mm(r)``: ``max(0.0, m)``
            else:
                mm[r] = 0.0
                self.regions_done += 1

    def sample_missing(self, region: int, rng: _Uniform) -> int:
        """A non-resident page of ``region``, drawn with probability ∝ its touch probability."""
        b0, b1 = self._boff[region], self._boff[region + 1]
        # the region's cumulative block weights, stale from ``_block_cum_from[region]``, and the
        # search (``cum_search``: one compiled call where numba is installed)
        bfrom = self._block_cum_from
        nb = b1 - b0
        j = bfrom[region]
        self.draws += 1
        if self.draws > COMPILED_AFTER and not self._compiled:
            from lpmsim.hypervisor.exact_kernel import cum_search

            self._search = cum_search
            self._compiled = True
        search = self._search
        b = search(self.block_live, self._block_cum, b0, b0 + j if j < nb else b1, b1, rng.random())
        bfrom[region] = nb
        lo = self._starts[region] + b * BLOCK
        hi = min(lo + BLOCK, self._ends[region])
        blk = b0 + b
        pfrom = self._page_cum_from
        n = hi - lo
        j = pfrom[blk]
        i = search(self._page_live, self._page_cum, lo, lo + j if j < n else hi, hi, rng.random())
        pfrom[blk] = n
        return lo + i


class LinkCounters:
    """What the link did after resume (for the summary and the conservation tests)."""

    def __init__(self) -> None:
        self.pushed = 0  # pages sent by the background push
        self.demanded = 0  # pages sent because a fault asked for them
        self.prefetched = 0  # neighbours sent along with a demanded page
        self.requests = 0  # demand requests sent to the source
        self.sent_pages: list[int] | None = None  # every page sent, when tracing (tests)


class ExactLink:
    """The post-copy link, page by page."""

    defer_checks = True
    """Keep the checks that are not due yet out of the event heap but the earliest
    (``_schedule_check``); False pushes each with ``call_at``, as a check
    (tests/foundation/test_exact_speed.py): the results are the same."""

    def __init__(
        self,
        env: Environment,
        pages: ExactPages,
        push_order: np.ndarray,
        scenario: Scenario,
        trace: bool = False,
    ) -> None:
        pf = scenario.platform
        self.env = env
        self.pages = pages
        self.tau = scenario.page_time_s
        self.half_rtt = pf.rtt_us * 1e-6 / 2
        self.overhead = pf.fault_overhead_us * 1e-6
        self.window = pf.push_window_pages
        self.fifo_mode = pf.discipline == "shared-fifo"
        self.prefetch = pf.prefetch_pages
        self.push_enabled = pf.background_push
        self.push_order = push_order
        self._order_mv: _Ints = _cells(push_order)
        self.push_ptr = 0
        self.cur = -1  # page on the wire, -1 if idle
        self.cur_is_push = False
        self.slot_end = env.now
        self.queue: deque[int] = deque()  # shared-fifo: everything queued; demand-first: the push window
        self.demand: deque[int] = deque()  # demand-first only
        self.push_queued = 0
        self.demand_pages: set[int] = set()  # queued pages that are demand items (shared-fifo)
        self.transit: deque[tuple[float, int]] = deque()
        # The earliest time at which ``advance`` has something to do: the end of the slot on the
        # wire, or the first arrival in flight (inf: neither).  Kept by ``_start_next`` and
        # ``advance``, the only places that change either, so that ``advance(t)`` for t before it
        # (most calls: every segment of every vCPU looks at the link) returns at once.
        self.due = _INF
        self.eta: dict[int, float] = {}
        self.pending: dict[int, list[Event]] = {}  # requested, request not yet at the source
        self.counters = LinkCounters()
        if trace:
            self.counters.sent_pages = []
        self.completed = env.event()
        self.completed_at: float | None = None
        self._check_gen = 0
        self._checks: list[tuple[float, int, int]] = []  # (heap time, order, gen) of each check due
        self._checks_in_heap: set[int] = set()  # orders of those put into the event heap
        if pages.not_resident == 0:
            self.completed_at = env.now
            self.completed.succeed()
        self._refill()
        self._start_next(env.now)
        self._schedule_check()

    # -- the push ----------------------------------------------------------------------------
    def _refill(self) -> None:
        if not self.push_enabled:
            return
        state = self.pages.state_mv
        order = self._order_mv
        while self.push_queued < self.window and self.push_ptr < len(order):
            p = order[self.push_ptr]
            self.push_ptr += 1
            if state[p] == MISSING:
                state[p] = COMMITTED
                self.pages.uncommitted -= 1
                self.queue.append(p)
                self.push_queued += 1

    # -- the server ----------------------------------------------------------------------------
    def _start_next(self, at: float) -> None:
        if self.demand:
            p = self.demand.popleft()
            is_push = False
        elif self.queue:
            p = self.queue.popleft()
            is_push = p not in self.demand_pages
            if is_push:
                self.push_queued -= 1
            else:
                self.demand_pages.discard(p)
        else:
            self.cur = -1
            self._set_due()
            return
        self.cur = p
        self.cur_is_push = is_push
        self.slot_end = at + self.tau
        self.eta[p] = self.slot_end + self.half_rtt
        if is_push:
            self._refill()
        self._set_due()

    def _set_due(self) -> None:
        """``due``: the end of the slot on the wire or the first arrival in flight, the earlier."""
        due = self.slot_end if self.cur >= 0 else _INF
        if self.transit and self.transit[0][0] < due:
            due = self.transit[0][0]
        self.due = due

    def advance(self, t: float) -> None:
        """Bring the link and the page states up to time ``t``."""
        if t < self.due:
            return
        if self.cur >= 0 and self.slot_end <= t:
            self._send_until(t)
        transit = self.transit
        if transit and transit[0][0] <= t:
            arrived: list[int] = []
            last = t
            eta = self.eta
            while transit and transit[0][0] <= t:
                last, p = transit.popleft()
                arrived.append(p)
                eta.pop(p, None)
            self.pages.mark_resident(arrived)
            if self.pages.not_resident == 0 and self.completed_at is None:
                self.completed_at = last
                self.completed.succeed()
        # ``self._set_due()``, inline (this runs at every page the vCPUs see arrive)
        due = self.slot_end if self.cur >= 0 else _INF
        if transit and transit[0][0] < due:
            due = transit[0][0]
        self.due = due

    def _send_until(self, t: float) -> None:
        """``while self.cur >= 0 and self.slot_end <= t:`` complete the page on the wire (count
        it, put it in flight) and ``self._start_next(self.slot_end)``, written out in one loop over
        locals (a page every ``tau``: the link's hot path); ``advance`` sets ``due`` after it."""
        c = self.counters
        sent = c.sent_pages
        transit, eta, demand, queue, dp = self.transit, self.eta, self.demand, self.queue, self.demand_pages
        tau, half = self.tau, self.half_rtt
        p, end, is_push = self.cur, self.slot_end, self.cur_is_push
        # ``_refill``'s, for the push page that leaves the queue
        push_on, window, pages = self.push_enabled, self.window, self.pages
        order, state = self._order_mv, pages.state_mv
        n_order = len(order)
        while True:
            # the page on the wire completes
            if is_push:
                c.pushed += 1
            if sent is not None:
                sent.append(p)
            transit.append((end + half, p))
            # _start_next(end)
            if demand:
                p = demand.popleft()
                is_push = False
            elif queue:
                p = queue.popleft()
                is_push = p not in dp
                if not is_push:
                    dp.discard(p)
            else:
                self.cur = -1  # idle: slot_end and cur_is_push stay those of the last page
                self.slot_end = end
                self.cur_is_push = is_push
                return
            end = end + tau
            eta[p] = end + half
            if is_push:
                # ``self.push_queued -= 1; self._refill()`` over locals
                pq = self.push_queued - 1
                if push_on:
                    ptr = self.push_ptr
                    while pq < window and ptr < n_order:
                        q = order[ptr]
                        ptr += 1
                        if state[q] == MISSING:
                            state[q] = COMMITTED
                            pages.uncommitted -= 1
                            queue.append(q)
                            pq += 1
                    self.push_ptr = ptr
                self.push_queued = pq
            if not end <= t:
                break
        self.cur, self.slot_end, self.cur_is_push = p, end, is_push

    def _busy_until(self) -> float:
        return self.slot_end if self.cur >= 0 else self.env.now

    # -- completion ------------------------------------------------------------------------------
    def _schedule_check(self) -> None:
        """Wake up when, with a work-conserving link, the last page would have arrived."""
        if self.completed_at is not None:
            return
        remaining = len(self.queue) + len(self.demand) + len(self.pending)
        if self.push_enabled:
            remaining += self.pages.uncommitted
        if remaining == 0 and self.cur < 0 and not self.transit:
            if self.pages.not_resident == 0:
                self.advance(self.env.now)
            return
        env = self.env
        now = env.now
        last_transit = self.transit[-1][0] if self.transit else now
        t = max(self._busy_until() + remaining * self.tau + self.half_rtt, last_transit, now)
        self._check_gen += 1
        if not self.defer_checks:
            gen = self._check_gen

            def check() -> None:
                if gen != self._check_gen:
                    return
                self.advance(self.env.now)
                self._schedule_check()

            env.call_at(t, check)
            return
        # ``env.call_at(t, check)`` where a check fires, finds itself superseded by a later one
        # (``gen`` no longer the latest) and does nothing: each demand request schedules one,
        # and thousands wait at the transfer's projected end, deepening the heap every event
        # goes through.  They are kept here instead, each with the heap key ``call_at`` would
        # give it, and only the earliest is in the event heap (``_push_first``): the same
        # events, at the same places in the order.
        entry = (now + (t - now), env.next_order(), self._check_gen)  # the time ``call_at`` pushes
        heappush(self._checks, entry)
        self._push_first()

    def _push_first(self) -> None:
        """Put the earliest check waiting in ``_checks`` into the event heap, unless it is there."""
        checks = self._checks
        if checks and checks[0][1] not in self._checks_in_heap:
            t, order, _gen = checks[0]
            self._checks_in_heap.add(order)
            self.env.call_in_place(t, order, self._fire_check)

    def _fire_check(self) -> None:
        """The earliest check is due (the heap pops in key order, so it is ``_checks[0]``)."""
        checks = self._checks
        _t, order, gen = heappop(checks)
        in_heap = self._checks_in_heap
        in_heap.remove(order)
        if gen == self._check_gen:
            self.advance(self.env.now)
            self._schedule_check()
        else:
            # The superseded checks that follow (all of a run's demand requests plan one, and they
            # fall due together near the transfer's projected end) do nothing either: each that
            # would be the next event is run here (``Environment.fire_inline``: counted, the clock
            # moved) instead of being pushed and popped.
            fire = self.env.fire_inline
            while checks and checks[0][2] != self._check_gen and checks[0][1] not in in_heap:
                t, nxt, _gen = checks[0]
                if not fire(t, nxt):
                    break
                heappop(checks)
        self._push_first()

    # -- demand faults ---------------------------------------------------------------------------
    def fault(self, page: int) -> Event | None:
        """A vCPU touches ``page`` now; returns the event of its resumption, or None if resident."""
        now = self.env.now
        self.advance(now)
        st = self.pages.state_mv[page]
        if st == RESIDENT:
            return None
        ev = self.env.event()
        promote = (
            st == COMMITTED
            and not self.fifo_mode
            and page not in self.pending
            and page not in self.eta
            and page not in self.demand
        )
        if st == MISSING or promote:
            if promote:
                # Waiting in the push window: under demand-first the request overtakes it.
                self.queue.remove(page)
                self.push_queued -= 1
                self._refill()
            else:
                self.pages.state_mv[page] = COMMITTED
                self.pages.uncommitted -= 1
            self.counters.requests += 1
            self.pending[page] = [ev]
            self.env.call_at(now + self.half_rtt, lambda: self._insert(page))
        elif page in self.pending:
            self.pending[page].append(ev)
        else:
            ev.succeed(delay=self._arrival_of(page) + self.overhead - now)
        return ev

    def _neighbours(self, page: int) -> list[int]:
        out: list[int] = []
        if self.prefetch == 0:
            return out
        state = self.pages.state
        lo = page + 1
        span = max(64, 4 * self.prefetch)
        while len(out) < self.prefetch and lo < state.size:
            hi = min(state.size, lo + span)
            idx = np.flatnonzero(state[lo:hi] == MISSING)
            out.extend(int(i) + lo for i in idx[: self.prefetch - len(out)])
            lo = hi
            span *= 4
        return out

    def _insert(self, page: int) -> None:
        now = self.env.now
        self.advance(now)
        extra = self._neighbours(page)
        for p in extra:
            self.pages.state[p] = COMMITTED
            self.pages.uncommitted -= 1
        self.counters.demanded += 1
        self.counters.prefetched += len(extra)
        if self.fifo_mode:
            for p in (page, *extra):
                self.queue.append(p)
                self.demand_pages.add(p)
        else:
            self.demand.append(page)
            self.demand.extend(extra)
        if self.cur < 0:
            self._start_next(now)
        # ``self._arrival_of(page)`` without searching the queue: the page was appended just now,
        # followed by ``extra``, and only the head can have left since
        arrival = self.eta.get(page)
        if arrival is None:
            q = self.queue if self.fifo_mode else self.demand
            pos = len(q) - 1 - len(extra)
            arrival = self.slot_end + (pos + 1) * self.tau + self.half_rtt
            self.eta[page] = arrival
        for ev in self.pending.pop(page):
            ev.succeed(delay=arrival + self.overhead - now)
        self._schedule_check()

    def _arrival_of(self, page: int) -> float:
        known = self.eta.get(page)
        if known is not None:
            return known
        pos = self.queue.index(page) if self.fifo_mode else self.demand.index(page)
        arrival = self.slot_end + (pos + 1) * self.tau + self.half_rtt
        self.eta[page] = arrival
        return arrival

"""The fluid transfer's per-step work as compiled kernels (``lpmsim.hypervisor.fluid``).

``FluidTransfer`` (docs/model/transfer.md) keeps its state in small arrays; these functions change
them: the per-region missing touch mass, the latency (``k_latency``: the formula of
``FluidTransfer.latency``), the split of a step's faults into those that wait for a page already
on its way and new requests, the requests (buckets drawn in proportion to their missing touch
mass, plus prefetch), the link's service and the push (``k_serve`` runs them in a step's order).
numba where installed, the same Python otherwise; draws by inversion (``fluid_draws``).  Imported
on first use, so that the exact mode and the CLI's start-up do not load numba.
"""

from __future__ import annotations

import math

import numpy as np

from lpmsim.guest.fluid_draws import binomial, jit, jit_nrt, multinomial, take_proportional
from lpmsim.hypervisor.fluid import RHO_MAX, RHO_TAU_S

# Rows of the kernels' scratch (``scratch``): buffers a step reuses instead of allocating them.
SF_W, SF_WORK, SF_QUEUED, SF_WM, SF_MASS, SF_MM = range(6)
"""Float rows: a region's bucket weights, ``take_proportional``'s room, per region the queued
mass, the push window's mass, the requested mass, the missing mass."""
SI_DRAW, SI_AVAIL, SI_TAKE, SI_TDRAW, SI_WAITS, SI_REQ = range(6)
"""Integer rows: a multinomial's draw, a group's available pages, the pages taken,
``take_proportional``'s draw, per region the faults that wait and those that request."""


@jit_nrt
def scratch(nbuckets: int, nregions: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernels' scratch for a transfer of ``nbuckets`` buckets in ``nregions`` regions: a
    float and an integer array of 6 rows each (``SF_*``, ``SI_*``), as wide as either."""
    width = max(nbuckets, nregions, 1)
    return np.zeros((6, width)), np.zeros((6, width), dtype=np.int64)


# -- compiled kernels (lpmsim.guest.fluid_draws: numba where installed, the same Python otherwise) --
@jit_nrt
def k_missing_mass(
    region_of: np.ndarray, missing: np.ndarray, tpp: np.ndarray, pending: np.ndarray, shared: np.ndarray
) -> np.ndarray:
    """Per region: the touch mass of uncommitted pages plus that of requested ones (shared regions
    only), clipped to [0, 1]."""
    out = np.empty(pending.size)
    k_missing_mass_into(region_of, missing, tpp, pending, shared, out)
    return out


@jit
def k_missing_mass_into(
    region_of: np.ndarray,
    missing: np.ndarray,
    tpp: np.ndarray,
    pending: np.ndarray,
    shared: np.ndarray,
    out: np.ndarray,
) -> None:
    """``k_missing_mass`` into ``out``.  Each region's sum is carried in a local while the buckets
    stay in one region (they are laid out region by region): the same additions in the same
    order as adding to ``out`` bucket by bucket."""
    for r in range(out.size):
        out[r] = 0.0
    if missing.size == 0:
        return
    cur = region_of[0]
    acc = 0.0
    for b in range(missing.size):
        r = region_of[b]
        if r != cur:
            out[cur] = acc
            cur = r
            acc = out[r]
        acc += missing[b] * tpp[b]
    out[cur] = acc
    for r in range(out.size):
        v = out[r] + (pending[r] if shared[r] else 0.0)
        out[r] = 0.0 if v < 0.0 else (1.0 if v > 1.0 else v)


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
    sf: np.ndarray,
    si: np.ndarray,
) -> tuple[int, int]:
    """Per region, ``faults[r]`` touches of its uncommitted pages (buckets drawn in proportion to
    their missing touch mass, capped by what they miss) become requests, each with ``prefetch``
    more pages taken proportionally; ``mass`` gets the requested touch mass per region.  ``sf``,
    ``si``: scratch (``scratch``).  Returns (new requests, prefetched pages)."""
    new_total = 0
    prefetched = 0
    for r in range(faults.size):
        mass[r] = 0.0
        if faults[r] <= 0:
            continue
        sel = reg_idx[reg_start[r] : reg_start[r + 1]]
        d = sel.size
        w = sf[SF_W, :d]
        tot = 0.0
        for j in range(d):
            w[j] = missing[sel[j]] * tpp[sel[j]]
            tot += w[j]
        if tot <= 0.0:
            continue
        draw = si[SI_DRAW, :d]
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
            avail = si[SI_AVAIL, :d]
            for j in range(d):
                avail[j] = missing[sel[j]]
            take = si[SI_TAKE, :d]
            got = take_proportional(st, avail, prefetch * new, take, sf[SF_WORK, :d], si[SI_TDRAW, :d])
            for j in range(d):
                missing[sel[j]] -= take[j]
                m += take[j] * tpp[sel[j]]
            prefetched += got
        mass[r] = m
    return new_total, prefetched


@jit
def _push(
    st: np.ndarray,
    n: int,
    group: int,
    grp_start: np.ndarray,
    grp_idx: np.ndarray,
    missing: np.ndarray,
    sf: np.ndarray,
    si: np.ndarray,
) -> tuple[int, int]:
    """Push ``n`` pages group after group, from group ``group`` on, each group's buckets drained in
    proportion to what they miss (``sf``, ``si``: scratch).  Returns (the group reached, pages
    pushed)."""
    left = n
    pushed = 0
    ngroups = grp_start.size - 1
    while left > 0 and group < ngroups:
        sel = grp_idx[grp_start[group] : grp_start[group + 1]]
        d = sel.size
        avail = si[SI_AVAIL, :d]
        cnt = 0
        for j in range(d):
            avail[j] = missing[sel[j]]
            cnt += avail[j]
        if cnt == 0:
            group += 1
            continue
        take = si[SI_TAKE, :d]
        got = take_proportional(st, avail, left, take, sf[SF_WORK, :d], si[SI_TDRAW, :d])
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
    wm: np.ndarray,
) -> None:
    """Per region, the touch mass of pages a fault can find already on their way: requested
    (shared regions) or, shared-fifo while the push runs, waiting in the push window (``wm``:
    scratch of a float per region)."""
    for r in range(out.size):
        out[r] = pending_mass[r] if shared[r] else 0.0
    if fifo_push and group < grp_start.size - 1:
        for r in range(out.size):
            wm[r] = 0.0
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
    sf: np.ndarray,
    si: np.ndarray,
) -> bool:
    """Serve the link for ``dt`` (``FluidTransfer.step``; ``sf``, ``si``: scratch).  Returns
    whether the last page left the source in this step."""
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
        # the step's own capacity is shared; the carry is the push's fractional page, not the
        # FIFO's (re-sharing it every step would hand demand more than its share)
        served = min(backlog, dt / tau * share)
        # The FIFO's share is taken at the backlog before service, so that backlog is the one
        # that settles at the FIFO's queue W·rho/(1-rho): what a new request finds.
        queued = backlog
    else:
        served = min(backlog, cap)
        queued = -1.0
    backlog -= served
    if backlog < 1e-9:
        backlog = 0.0
    fs[0] = backlog
    fs[5] = backlog if queued < 0.0 else queued
    budget = cap - served
    if push:
        n = min(int(budget), ist[0])
        group, got = _push(st, n, ist[1], grp_start, grp_idx, missing, sf, si)
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
    sf: np.ndarray,
    si: np.ndarray,
) -> int:
    """``FluidTransfer.request``: the new requests join the backlog, their touch mass stays pending
    until they land (``sf``, ``si``: scratch).  Returns how many became new requests."""
    mass = sf[SF_MASS, : pending_mass.size]
    new_total, prefetched = _request(st, faults, reg_start, reg_idx, missing, tpp, ci[3], mass, sf, si)
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
    sf: np.ndarray,
    si: np.ndarray,
) -> bool:
    """A fluid step's transfer in one call: ``split_faults``, ``request`` of the rest at ``lat``,
    then ``step(dt)``; ``mm`` is ``region_missing_mass`` now; ``sf``, ``si``: scratch
    (``scratch``; ``mm`` may be its row ``SF_MM``).  Returns whether the last page left the
    source."""
    any_fault = False
    for r in range(faults.size):
        if faults[r] > 0:
            any_fault = True
    if any_fault:
        nreg = pending_mass.size
        queued = sf[SF_QUEUED, :nreg]
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
            sf[SF_WM, :nreg],
        )
        waits = si[SI_WAITS, :nreg]
        _split(st, faults, queued, mm, waits)
        req = si[SI_REQ, :nreg]
        for r in range(nreg):
            req[r] = faults[r] - waits[r]
        _request_all(
            st,
            req,
            lat,
            fs,
            ist,
            cnt,
            cf,
            ci,
            reg_start,
            reg_idx,
            missing,
            tpp,
            pend_t,
            pend_m,
            pending_mass,
            sf,
            si,
        )
    return _link(
        st, dt, fs, ist, cnt, cf, ci, grp_start, grp_idx, missing, pend_t, pend_m, pending_mass, sf, si
    )


@jit
def k_latency(
    fs: np.ndarray, ist: np.ndarray, cf: np.ndarray, ci: np.ndarray, outstanding: float, closed: bool
) -> float:
    """``FluidTransfer.latency`` (``outstanding`` used only when ``closed``)."""
    tau = cf[0]
    backlog = fs[5]  # the demand pages a new request finds queued ahead of it (``_link``)
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

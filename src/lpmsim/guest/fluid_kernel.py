"""The fluid guest's step over all vCPUs, as one compiled loop (``lpmsim.guest.fluid``).

One call per fluid step of length ``dt`` at fault latency ``lat`` (docs/model/guest.md, "Fluid
mode").  Each vCPU in turn, with draws from the named stream ``guest/fluid`` in that order
(``fluid_draws``: the same numbers compiled or not):

1. **its current episode goes on**: the part of ``busy`` inside the step is used; a vCPU with
   faults of an episode still to take (``ep_left``) takes as many as fit in its free time, at least
   one, each at the latency of this step (a vCPU never has two requests outstanding), each kept
   with probability phi_k(now)/phi_k(start) (``ep_phi0``: the episode's K later faults were drawn
   at its start, and exact thins touches drawn at an earlier q); if faults remain it stays
   inside the episode for the whole step;
2. **new episodes** in the free time left: up to ``MAX_ROUNDS`` times, the time to the next episode
   is Exp(1/total) with total = Σ hazard (a fault in activity k at g_k·phi_k, g the activity mix
   of free time, ``step_setup``; wanting lock ℓ while its holder is stalled at ℓ's attempt rate);
   after that a renewal tail of Poisson(total·left / (1 + total·lat)) more episodes.  The episode's activity is drawn from ``cdf``;
3. **an episode in activity k** is the fault plus the rest of its segment: c ~ Exp(mean_k) more
   CPU time with K ~ Poisson(c·phi_k) more faults, so it lasts est = c + (1+K)·lat (the compound
   Poisson stall of a segment); this step takes its first fault (c + lat of wall time), the K
   others follow in later steps (1.);
4. **a spin**: wanting lock ℓ at time ``at`` while its holder is stalled: the vCPU spins until the
   release ``lock_release[ℓ]``.

Accounting per vCPU: its faults' blocked time (``blocktime``, ``faults``, laid end to end in
``until`` as ``GuestMetrics._lay`` does), per activity the faults and the episode stalls
(count, sum, maximum, histogram per context row), the touched regions' fault mass
(``region_faults``: faults x the activity's missing-mass split).  What the kernel model must see
is returned: the publications (vCPU, activity, kind, end, stall share, start; ``PUB_*``) and the
spins (vCPU, lock, length, start); ``GuestMetrics`` gets the rest in bulk.

Publication (docs/model/agreement.md, fix 6; commit 49a213f ported): an episode of an activity
the detectors see whole (preempt_off, interrupts off, a lock) that lasts at least ``publish_min``
is published whole, stalled if the latency is at least ``publish_min``; an episode of user or
preemptible kernel code, seen only through its stalls, is published only when the latency is at
least ``publish_min``, and then one stall at a time: its first fault from the step's time for one
latency, each later batch of its faults (1.) from the start of the vCPU's free time plus the CPU
time between two faults, min(mean_a, 1/phi_a), for their latencies.  The vCPU runs between them (exact: stalled at
each fault, running in between), so its timers, its stopper thread and its quiescent states run.

Ordering: vCPU by vCPU (the numpy step before it went round by round over all vCPUs); a lock's
release time set by one vCPU's episode is seen by the spins of the vCPUs after it in the same
step, as it was by the rounds after it.  The renewal tail's episodes of one vCPU all add to its
busy time and faults (the numpy step's fancy-indexed ``+=`` kept only one of them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from lpmsim.guest import fluid_hist
from lpmsim.guest.fluid_draws import (
    HAVE_VIEWS,
    binomial,
    categorical,
    exponential,
    f8_view,
    i8_view,
    jit,
    jit_nrt,
    multinomial,
    poisson,
    u8_view,
    uniform,
)
from lpmsim.guest.fluid_link import SF_MM, k_latency, k_missing_mass_into, k_serve

hist_bin = jit(fluid_hist.hist_bin)  # the stall histogram's bin (GuestMetrics), compiled

MAX_ROUNDS = 4
TAIL_CAP = 64
"""The renewal tail's episodes per vCPU and step are at most this many (a Poisson draw capped:
its mean total·left/(1 + total·lat) is below 1 wherever the step is a third of the latency, so
the cap never binds in practice; it bounds the buffers, which a compiled loop must not grow)."""


BATCH_MAX = 256
"""The most fluid steps one compiled call runs back to back (``fluid_batch``)."""

PUB_WHOLE = 0
"""A published episode (``pub_i[2]``) of an activity the detectors see whole (preempt_off,
interrupts off, a lock): its context from the step's time to its estimated end, stalled if the
latency is at least ``publish_min``."""
PUB_FIRST_STALL = 1
"""The first stall of an episode the detectors see only through its stalls (user, preemptible
kernel) when the latency is at least ``publish_min``: stalled from the step's time for one
latency; the vCPU runs between its stalls (commit 49a213f)."""
PUB_STALL = 2
"""A later stall of such an episode: the faults taken in this step, ``pub_f[2]`` (the start of the
vCPU's free time plus the CPU time between two faults) to ``pub_f[0]`` (+ their latencies)."""


def buffer_size(n: int) -> int:
    """Entries of the publish and spin buffers for ``n`` vCPUs: every episode a step can start,
    and one stall of an episode going on, per vCPU."""
    return n * (MAX_ROUNDS + TAIL_CAP + 1) + 16


@jit
def step_setup(
    now: float,
    rate: np.ndarray,
    weights: np.ndarray,
    mm: np.ndarray,
    f: np.ndarray,
    lock_release: np.ndarray,
    lock_attempt: np.ndarray,
    act_f: np.ndarray,
    cdf: np.ndarray,
    split: np.ndarray,
) -> float:
    """The step's hazards from the missing mass ``mm`` per region: phi_k = r_k·(w_k·mm) (into
    ``act_f[1]``), the episodes' hazards g_k·phi_k then, per lock, its attempt rate while its
    holder is stalled (``lock_release`` after now); ``cdf`` their normalised cumulative sum,
    ``split[k]`` activity k's missing mass per region, normalised.  Returns the total hazard.

    g is the activity mix of *free* time (running, not inside an episode): g_k ∝ f_k / (1 +
    phi_k·mean_k), normalised to Σ f.  An episode's CPU time (the rest of its segment) is running
    time in its activity too, so free time holds less of the activities whose segments fault
    often: a segment of k (Exp(mean_k) CPU time, faults at phi_k) runs fault-free for mean_k / (1 +
    phi_k·mean_k) on average before its first fault, and segments of k start at a rate ∝ f_k /
    mean_k.  With this mix the CPU time in k (free plus episodes) is the share f_k, and its faults
    per CPU second f_k·phi_k, as in the exact mode (docs/model/agreement.md)."""
    nact, nreg = weights.shape
    fsum = 0.0
    gsum = 0.0
    for k in range(nact):
        dot = 0.0
        tot = 0.0
        for r in range(nreg):
            w = weights[k, r] * mm[r]
            dot += w
            split[k, r] = w
            tot += w
        if tot > 0.0:
            for r in range(nreg):
                split[k, r] /= tot
        phi = rate[k] * dot
        act_f[1, k] = phi
        fsum += f[k]
        gsum += f[k] / (1.0 + phi * act_f[0, k])
    norm = fsum / gsum if gsum > 0.0 else 1.0
    acc = 0.0
    for k in range(nact):
        phi = act_f[1, k]
        acc += f[k] / (1.0 + phi * act_f[0, k]) * norm * phi
        cdf[k] = acc
    for j in range(lock_release.size):
        if lock_release[j] > now:
            acc += lock_attempt[j]
        cdf[nact + j] = acc
    if acc > 0.0:
        for k in range(cdf.size):
            cdf[k] /= acc
    return acc


@jit
def outstanding(busy: np.ndarray, stall_frac: np.ndarray, dt: float) -> float:
    """vCPUs stalled on a fault, averaged over a step of ``dt``: the population a request queues
    behind (the transfer's closed-population latency)."""
    acc = 0.0
    for i in range(busy.size):
        b = busy[i]
        acc += (b if b < dt else dt) * stall_frac[i]  # (as ``guest_step`` sums it)
    return acc / dt


SERIES_MARGIN = 1e-12
"""Slack of ``episode_starts``' bounds (their rounding is below 1e-15 for x < 1)."""


@jit
def episode_starts(u: float, x: float) -> bool:
    """``u < -expm1(-x)``, the episode start test (x >= 0), without the ``expm1`` where the
    alternating series of 1 - exp(-x) decides it: for 0 <= x < 1 its partial sums ending in a
    negative term are below it, those ending in a positive term above, so a ``u`` below
    x - x²/2 + x³/6 - x⁴/24 or above x - x²/2 + x³/6 (each by ``SERIES_MARGIN``, far more than
    their rounding and libm's) gets the answer ``expm1`` would give; for x >= 1 (a step holds
    several episodes' hazard: the common case at 1,024 vCPUs), a ``u`` below
    1 - 1/(1 + x + x²/2 + x³/6), as exp(x) is above its series' partial sums.  The same answer,
    not an approximation: the draws stay the same numbers."""
    x2 = x * x
    if x < 1.0:
        hi = x - x2 / 2.0 + x2 * x / 6.0
        if u >= hi + SERIES_MARGIN:
            return False
        if u < hi - x2 * x2 / 24.0 - SERIES_MARGIN:
            return True
    elif u < 1.0 - 1.0 / (1.0 + x + x2 / 2.0 + x2 * x / 6.0) - SERIES_MARGIN:
        return True  # exp(-x) <= 1/(1 + x + x²/2 + x³/6)
    return u < -math.expm1(-x)


@jit
def guest_step(
    st: np.ndarray,
    now: float,
    dt: float,
    lat: float,
    busy: np.ndarray,  # per vCPU: seconds of its current episode still to go
    stall_frac: np.ndarray,  # per vCPU: the share of that episode spent stalled
    ep_left: np.ndarray,  # per vCPU: the episode's faults still to take
    ep_act: np.ndarray,  # per vCPU: the episode's activity
    ep_phi0: np.ndarray,  # per vCPU: phi of the episode's activity at its start
    claimed: np.ndarray,  # per vCPU: an injected bug runs there (no workload episodes)
    blocktime: np.ndarray,  # per vCPU (GuestMetrics): blocked time
    faults: np.ndarray,  # per vCPU (GuestMetrics): faults
    until: np.ndarray,  # per vCPU (GuestMetrics._until): end of its lost time laid end to end
    total: float,
    cdf: np.ndarray,  # the activities' then the spins' cumulative hazard share
    act_f: np.ndarray,  # per activity: mean_k, phi_k, visible, irqs-off, context row (rows 0..4)
    nctx: int,
    publish_min: float,
    long_stall: bool,
    lay: bool,
    lay_from: float,
    lock_release: np.ndarray,
    split: np.ndarray,  # activity x region: the share of its faults per region
    n_act: np.ndarray,  # out: faults per activity in this step
    seg: np.ndarray,  # per context row: episodes, stall sum, stall max (columns 0..2)
    seg_hist: np.ndarray,  # per context row: the stall histogram
    region_faults: np.ndarray,  # out: fault mass per region
    faults_out: np.ndarray,  # out: the step's faults per region (a multinomial of region_faults)
    pub_f: np.ndarray,  # scratch for the returned publications: end, stall share, start (rows 0..2)
    pub_i: np.ndarray,  # vCPU, activity, kind (PUB_*) (rows 0..2)
    spin_f: np.ndarray,  # length, start
    spin_i: np.ndarray,  # vCPU, lock
    dt_o: float,  # the step length for which to sum the next step's ``outstanding``
) -> tuple[int, int, float, int, float]:
    """One step (module docstring).  Returns (episodes to publish, spins, the longest
    interrupts-off episode (0 if none), faults taken, the sum of ``outstanding(busy, stall_frac,
    dt_o)`` as the step leaves them, before its division by ``dt_o``: the next step's, if it is
    ``dt_o`` long, summed here vCPU by vCPU in the same order, so the same number).  The publish
    and spin buffers hold ``buffer_size(n)`` entries: at most ``MAX_ROUNDS + TAIL_CAP`` episodes
    per vCPU."""
    n = busy.size
    nact = act_f.shape[1]
    nreg = region_faults.size
    for a in range(nact):
        n_act[a] = 0
    for r in range(nreg):
        region_faults[r] = 0.0
    npub = 0
    nspin = 0
    irqs_max = 0.0
    nf_total = 0
    acc_o = 0.0
    inv_total = 1.0 / total if total > 0.0 else 0.0
    # P(an episode starts within a whole step) = P(Exp(total) < dt): the threshold of U for a vCPU
    # with the whole step free (most of them), so that only those with an episode take a log
    p_dt = -math.expm1(-total * dt)
    bin1 = hist_bin(lat)  # the stall histogram's bin of an episode without later faults (1·lat)
    for i in range(n):
        # -- 1. the current episode goes on
        b = busy[i]
        used = b if b < dt else dt
        b -= used
        free = 0.0 if claimed[i] else dt - used
        nf = 0
        el = ep_left[i]
        if el > 0 and free > 0.0:
            fit = free / lat
            cand = el if fit >= el else int(fit)  # (a float compared first: no int() overflow)
            if cand < 1:
                cand = 1
            el -= cand
            ep_left[i] = el
            a = ep_act[i]
            # each candidate kept with probability phi_a(now) / phi_a(start): exact thins touches
            # drawn at an earlier q (pages that arrived meanwhile no longer fault)
            phi0 = ep_phi0[i]
            m = cand
            if phi0 > 0.0:
                keep = act_f[1, a] / phi0
                if keep < 1.0:
                    m = binomial(st, cand, keep)
            if m > 0 and long_stall and act_f[2, a] == 0.0:
                # an episode the detectors see only through its stalls: this one is published on
                # its own, after the CPU time between two of its faults, min(mean_a, 1/phi_a), run
                # from where the vCPU's free time begins (``PUB_STALL``)
                phi = act_f[1, a]
                gap = act_f[0, a]
                if phi > 0.0 and 1.0 / phi < gap:
                    gap = 1.0 / phi
                t0 = now + used + gap
                pub_i[0, npub] = i
                pub_i[1, npub] = a
                pub_i[2, npub] = PUB_STALL
                pub_f[0, npub] = t0 + m * lat
                pub_f[1, npub] = 1.0
                pub_f[2, npub] = t0
                npub += 1
            over = m * lat - free
            if over > 0.0:
                b += over
            stall_frac[i] = 1.0
            free = -over if over < 0.0 else 0.0
            if el > 0:
                free = 0.0  # still inside the episode: no new one in this step
            n_act[a] += m
            nf += m
            for r in range(nreg):
                region_faults[r] += m * split[a, r]
        # -- 2. new episodes in the free time
        left = free
        if total > 0.0 and left > 0.0:
            for rnd in range(MAX_ROUNDS + 1):
                if left <= 0.0:
                    break
                if rnd < MAX_ROUNDS:
                    # t1 ~ Exp(total) by inversion, t1 = -log(1 - U)/total, and t1 < left exactly
                    # when U < 1 - exp(-total·left): the log only where an episode starts
                    u = uniform(st)
                    starts = u < p_dt if left == dt else episode_starts(u, total * left)
                    if not starts:
                        left = 0.0
                        break
                    t1 = -math.log(1.0 - u) * inv_total
                    if not t1 < left:  # the two tests differ only by rounding
                        left = 0.0
                        break
                    nep = 1
                else:
                    # renewal tail: the expected number of further episodes in the time left
                    nep = poisson(st, total * left / (1.0 + total * lat))
                    if nep > TAIL_CAP:
                        nep = TAIL_CAP
                    t1 = 0.0
                    left = 0.0
                for _e in range(nep):
                    k = categorical(st, cdf)
                    at = now + used + (free - left) + t1
                    if k >= nact:
                        # -- 4. a spin behind a stalled holder of lock k - nact
                        lock = k - nact
                        wall = lock_release[lock] - at
                        if wall < 0.0:
                            wall = 0.0
                        rest = left - t1 - wall
                        if rest < 0.0:
                            b += -rest
                            stall_frac[i] = 0.0
                            left = 0.0
                        else:
                            left = rest
                        if wall > 0.0:
                            spin_i[0, nspin] = i
                            spin_i[1, nspin] = lock
                            spin_f[0, nspin] = wall
                            spin_f[1, nspin] = at
                            nspin += 1
                        continue
                    # -- 3. an episode in activity k: its first fault now, K more later
                    c = exponential(st, act_f[0, k])
                    extra = poisson(st, c * act_f[1, k])
                    tail = (1 + extra) * lat
                    est = c + tail  # the episode's length if the latency stays
                    wall = c + lat
                    rest = left - t1 - wall
                    if rest < 0.0:
                        b += -rest
                        stall_frac[i] = lat / wall if wall > 0.0 else 0.0
                        left = 0.0
                    else:
                        left = rest
                    if extra > 0:
                        ep_left[i] += extra
                        ep_act[i] = k
                        ep_phi0[i] = act_f[1, k]
                        left = 0.0  # busy with its episode until the next step
                    nf += 1
                    n_act[k] += 1
                    for r in range(nreg):
                        region_faults[r] += split[k, r]
                    row = int(act_f[4, k])
                    seg[row, 0] += 1.0
                    seg[row, 1] += tail
                    if tail > seg[row, 2]:
                        seg[row, 2] = tail
                    seg_hist[row, bin1 if extra == 0 else hist_bin(tail)] += 1
                    if act_f[3, k] != 0.0 and est > irqs_max:
                        irqs_max = est
                    if k >= nctx:
                        lk = k - nctx
                        if now + est > lock_release[lk]:
                            lock_release[lk] = now + est
                    if act_f[2, k] != 0.0:
                        if est >= publish_min:  # seen whole: its context for its whole length
                            pub_i[0, npub] = i
                            pub_i[1, npub] = k
                            pub_i[2, npub] = PUB_WHOLE
                            pub_f[0, npub] = now + est
                            pub_f[1, npub] = tail / est
                            pub_f[2, npub] = now
                            npub += 1
                    elif long_stall:  # seen through its stalls only: the first one now
                        pub_i[0, npub] = i
                        pub_i[1, npub] = k
                        pub_i[2, npub] = PUB_FIRST_STALL
                        pub_f[0, npub] = now + lat
                        pub_f[1, npub] = 1.0
                        pub_f[2, npub] = now
                        npub += 1
        busy[i] = b
        acc_o += (b if b < dt_o else dt_o) * stall_frac[i]  # ``outstanding``'s term
        if nf > 0:
            # the vCPU's blocked time, laid end to end from its record time (GuestMetrics._lay)
            blocktime[i] += nf * lat
            faults[i] += nf
            if lay:
                u = until[i]
                until[i] = (u if u > lay_from else lay_from) + nf * lat
            nf_total += nf
    # -- the step's faults per region: the fault mass rounded at random, split multinomially
    total_f = 0.0
    for r in range(nreg):
        total_f += region_faults[r]
    if total_f > 0.0:
        count = int(total_f)
        if uniform(st) < total_f - count:
            count += 1
        multinomial(st, count, region_faults, faults_out)
    else:
        for r in range(nreg):
            faults_out[r] = 0
    return npub, nspin, irqs_max, nf_total, acc_o


@jit
def fluid_step(
    st_g: np.ndarray,
    st_t: np.ndarray,
    now: float,
    max_dt: float,
    min_dt: float,
    busy: np.ndarray,
    stall_frac: np.ndarray,
    ep_left: np.ndarray,
    ep_act: np.ndarray,
    ep_phi0: np.ndarray,
    claimed: np.ndarray,
    blocktime: np.ndarray,
    faults_v: np.ndarray,
    until: np.ndarray,
    rate: np.ndarray,
    weights: np.ndarray,
    f: np.ndarray,
    lock_release: np.ndarray,
    lock_attempt: np.ndarray,
    act_f: np.ndarray,
    cdf: np.ndarray,
    split: np.ndarray,
    nctx: int,
    publish_min: float,
    lay: bool,
    lay_from: float,
    n_act: np.ndarray,
    seg: np.ndarray,
    seg_hist: np.ndarray,
    region_faults: np.ndarray,
    faults_out: np.ndarray,
    pub_f: np.ndarray,
    pub_i: np.ndarray,
    spin_f: np.ndarray,
    spin_i: np.ndarray,
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
    acc_max: float,
    sf: np.ndarray,
    si: np.ndarray,
) -> tuple[float, float, int, int, float, int, bool, float]:
    """A whole fluid step in one call (``FluidGuest._run``): the step length (a third of the
    open-system latency, within [min_dt, max_dt]), the latency of the step's faults (closed
    population: the vCPUs stalled on average over the step), the hazards (``step_setup``), the
    vCPUs (``guest_step``), then the transfer (``lpmsim.guest.fluid_link.k_serve``: split,
    request, serve the link).  ``acc_max``: the sum of ``outstanding`` for a step of ``max_dt``
    that the step before summed (``guest_step``), or -1.  Returns (dt, latency, episodes to
    publish, spins, the longest interrupts-off episode, faults, whether the last page left the
    source, the next step's sum for ``max_dt``).  ``sf``, ``si``: the transfer's scratch
    (``fluid_link.scratch``)."""
    lat0 = k_latency(fs, ist, cf, ci, 0.0, False)
    dt = min(max_dt, max(lat0 / 3, min_dt))
    busy_avg = acc_max / dt if (acc_max >= 0.0 and dt == max_dt) else outstanding(busy, stall_frac, dt)
    lat = k_latency(fs, ist, cf, ci, busy_avg, True)
    mm = sf[SF_MM, : pending_mass.size]
    k_missing_mass_into(region_of, missing, tpp, pending_mass, shared, mm)
    total = step_setup(now, rate, weights, mm, f, lock_release, lock_attempt, act_f, cdf, split)
    npub, nspin, irqs_max, nf, acc_next = guest_step(
        st_g,
        now,
        dt,
        lat,
        busy,
        stall_frac,
        ep_left,
        ep_act,
        ep_phi0,
        claimed,
        blocktime,
        faults_v,
        until,
        total,
        cdf,
        act_f,
        nctx,
        publish_min,
        lat >= publish_min,
        lay,
        lay_from,
        lock_release,
        split,
        n_act,
        seg,
        seg_hist,
        region_faults,
        faults_out,
        pub_f,
        pub_i,
        spin_f,
        spin_i,
        max_dt,
    )
    done = k_serve(
        st_t,
        faults_out,
        lat,
        dt,
        fs,
        ist,
        cnt,
        cf,
        ci,
        region_of,
        tpp,
        shared,
        reg_start,
        reg_idx,
        grp_start,
        grp_idx,
        group_region,
        missing,
        pend_t,
        pend_m,
        pending_mass,
        mm,  # unchanged since the step's start: the vCPUs do not touch the transfer's state
        sf,
        si,
    )
    return dt, lat, npub, nspin, irqs_max, nf, done, acc_next


BOUND: tuple[tuple[str, str, int], ...] = (
    ("t_buf", "f8", 1),
    ("lat_buf", "f8", 1),
    ("nf_buf", "i8", 1),
    ("irqs_buf", "f8", 1),
    ("ctx_nf", "i8", 1),
    ("ctx_stall", "f8", 1),
    ("st_g", "u8", 1),
    ("st_t", "u8", 1),
    ("busy", "f8", 1),
    ("stall_frac", "f8", 1),
    ("ep_left", "i8", 1),
    ("ep_act", "i8", 1),
    ("ep_phi0", "f8", 1),
    ("claimed", "i8", 1),
    ("blocktime", "f8", 1),
    ("faults_v", "i8", 1),
    ("until_v", "f8", 1),
    ("rate", "f8", 1),
    ("weights", "f8", 2),
    ("lock_release", "f8", 1),
    ("lock_attempt", "f8", 1),
    ("act_f", "f8", 2),
    ("cdf", "f8", 1),
    ("split", "f8", 2),
    ("n_act", "i8", 1),
    ("seg", "f8", 2),
    ("seg_hist", "i8", 2),
    ("region_faults", "f8", 1),
    ("faults_out", "i8", 1),
    ("pub_f", "f8", 2),
    ("pub_i", "i8", 2),
    ("spin_f", "f8", 2),
    ("spin_i", "i8", 2),
    ("fs", "f8", 1),
    ("ist", "i8", 1),
    ("cnt", "i8", 1),
    ("cf", "f8", 1),
    ("ci", "i8", 1),
    ("region_of", "i8", 1),
    ("tpp", "f8", 1),
    ("reg_start", "i8", 1),
    ("reg_idx", "i8", 1),
    ("grp_start", "i8", 1),
    ("grp_idx", "i8", 1),
    ("group_region", "i8", 1),
    ("missing", "i8", 1),
    ("pending_mass", "f8", 1),
    ("sf", "f8", 2),
    ("si", "i8", 2),
)
"""``fluid_batch``'s array arguments after its first 15 (name, dtype, dimensions), in order: the
arrays a fluid guest's run calls every batch with that never change identity (the guest's, its
metrics', its transfer's), bound once (``batch_binding``)."""


def batch_binding(arrays: tuple[np.ndarray, ...]) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """How to call a batch with the ``BOUND`` ``arrays``: ``(call, bound)``, so that
    ``call(*dynamic, *bound)`` is ``fluid_batch(*dynamic, *arrays)`` (``dynamic``: its first 15
    arguments).  Compiled (numba with ``fluid_draws.HAVE_VIEWS``), ``call`` is ``fluid_batch_at``
    and ``bound`` the arrays' addresses and shapes (``fluid_batch_at`` views them without numba
    unboxing each at every call: ~3 µs a batch) and the arrays themselves, which it keeps alive;
    else ``fluid_batch`` and the arrays.  The arrays must stay the objects their owners use
    (nothing rebinds them: tests/guest/test_fluid_batch.py)."""
    if len(arrays) != len(BOUND):
        raise ValueError(f"{len(arrays)} arrays for the {len(BOUND)} of BOUND")
    dtypes = {"f8": np.float64, "i8": np.int64, "u8": np.uint64}
    for a, (name, dt, nd) in zip(arrays, BOUND, strict=True):
        if a.dtype != dtypes[dt] or a.ndim != nd or not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(
                f"{name}: {a.dtype} {a.ndim}-d array (contiguous {a.flags.c_contiguous}) for {dt} {nd}-d"
            )
    if not HAVE_VIEWS:
        return fluid_batch, arrays
    addr = np.array([a.ctypes.data for a in arrays], dtype=np.int64)
    dims = np.zeros((len(arrays), 2), dtype=np.int64)
    for j, a in enumerate(arrays):
        dims[j, : a.ndim] = a.shape
    return fluid_batch_at, (addr, dims)


@jit_nrt
def fluid_batch(
    kmax: int,
    until: float,
    stop: float,
    window_start: float,
    now: float,
    max_dt: float,
    min_dt: float,
    nctx: int,
    publish_min: float,
    lay: bool,
    acc_max: float,
    f: np.ndarray,
    shared: np.ndarray,
    pend_t: np.ndarray,
    pend_m: np.ndarray,
    t_buf: np.ndarray,
    lat_buf: np.ndarray,
    nf_buf: np.ndarray,
    irqs_buf: np.ndarray,
    ctx_nf: np.ndarray,
    ctx_stall: np.ndarray,
    st_g: np.ndarray,
    st_t: np.ndarray,
    busy: np.ndarray,
    stall_frac: np.ndarray,
    ep_left: np.ndarray,
    ep_act: np.ndarray,
    ep_phi0: np.ndarray,
    claimed: np.ndarray,
    blocktime: np.ndarray,
    faults_v: np.ndarray,
    until_v: np.ndarray,
    rate: np.ndarray,
    weights: np.ndarray,
    lock_release: np.ndarray,
    lock_attempt: np.ndarray,
    act_f: np.ndarray,
    cdf: np.ndarray,
    split: np.ndarray,
    n_act: np.ndarray,
    seg: np.ndarray,
    seg_hist: np.ndarray,
    region_faults: np.ndarray,
    faults_out: np.ndarray,
    pub_f: np.ndarray,
    pub_i: np.ndarray,
    spin_f: np.ndarray,
    spin_i: np.ndarray,
    fs: np.ndarray,
    ist: np.ndarray,
    cnt: np.ndarray,
    cf: np.ndarray,
    ci: np.ndarray,
    region_of: np.ndarray,
    tpp: np.ndarray,
    reg_start: np.ndarray,
    reg_idx: np.ndarray,
    grp_start: np.ndarray,
    grp_idx: np.ndarray,
    group_region: np.ndarray,
    missing: np.ndarray,
    pending_mass: np.ndarray,
    sf: np.ndarray,
    si: np.ndarray,
) -> tuple[int, float, float, int, int, bool, float, int, int, float, int, float, int, int, int]:
    """Consecutive fluid steps from ``now`` while nothing else can happen in between: the next
    step starts before ``until`` (the next event of the simulation, or the next look of a parked
    end watch) and at or before ``stop`` (the run's horizon), the step before it published no
    episode and started no spin (the kernel model must see those at their step's time), the
    transfer is not complete, and at most ``kmax`` steps (the buffers).  Each step is exactly
    ``fluid_step``, at the time the previous one ends (``t + dt``, as the event core adds a
    delay).  The buffers get, in step order, the latency and faults of each step with faults
    (``lat_buf``, ``nf_buf``: the fault records, ``GuestMetrics.record_counted``'s) and the start
    and longest interrupts-off episode of each step with one (``t_buf``, ``irqs_buf``); per
    context row the faults added to ``ctx_nf`` (``GuestMetrics``' faults not yet counted in
    ``ctx_faults``) and their stall to ``ctx_stall``, step by step.  ``acc_max``: the sum of
    ``outstanding`` for a step of ``max_dt`` that the step before this batch summed, or -1 (Python
    changed ``busy`` since: the first step sums its own).  ``sf``, ``si``: the transfer's scratch
    (``fluid_link.scratch``; no kernel reads what it did not write there in the same step).  The
    transfer's request, prefetch and push counts (``cnt``) are returned and zeroed.  Returns
    (steps, start and length of the last step, episodes to publish and spins of the last step,
    whether the transfer is done, the last step's latency, fault records, interrupts-off records,
    the longest latency recorded (0 if none), the last step's faults, the next step's
    ``acc_max``, the requests, prefetched and pushed pages)."""
    k = 0
    nrec = 0
    nirq = 0
    lat_max = 0.0
    t = now
    while True:
        lay_from = t if t > window_start else window_start
        dt, lat, npub, nspin, irqs_max, nf, done, acc_max = fluid_step(
            st_g,
            st_t,
            t,
            max_dt,
            min_dt,
            busy,
            stall_frac,
            ep_left,
            ep_act,
            ep_phi0,
            claimed,
            blocktime,
            faults_v,
            until_v,
            rate,
            weights,
            f,
            lock_release,
            lock_attempt,
            act_f,
            cdf,
            split,
            nctx,
            publish_min,
            lay,
            lay_from,
            n_act,
            seg,
            seg_hist,
            region_faults,
            faults_out,
            pub_f,
            pub_i,
            spin_f,
            spin_i,
            fs,
            ist,
            cnt,
            cf,
            ci,
            region_of,
            tpp,
            shared,
            reg_start,
            reg_idx,
            grp_start,
            grp_idx,
            group_region,
            missing,
            pend_t,
            pend_m,
            pending_mass,
            acc_max,
            sf,
            si,
        )
        if nf > 0:
            lat_buf[nrec] = lat
            nf_buf[nrec] = nf
            nrec += 1
            if lat > lat_max:
                lat_max = lat
        if irqs_max > 0.0:
            t_buf[nirq] = t
            irqs_buf[nirq] = irqs_max
            nirq += 1
        for a in range(n_act.size):
            if n_act[a] > 0:
                row = int(act_f[4, a])
                ctx_nf[row] += n_act[a]
                ctx_stall[row] += n_act[a] * lat  # GuestMetrics.ctx_stall_s, in step order
        k += 1
        t_next = t + dt
        # the last test: the pending ring is full (Python makes room)
        if (
            done
            or npub > 0
            or nspin > 0
            or k >= kmax
            or not t_next < until
            or t_next > stop
            or ist[3] >= pend_t.size
        ):
            req, pre, push = int(cnt[0]), int(cnt[1]), int(cnt[2])
            cnt[0] = 0
            cnt[1] = 0
            cnt[2] = 0
            return k, t, dt, npub, nspin, done, lat, nrec, nirq, lat_max, nf, acc_max, req, pre, push
        t = t_next


@jit_nrt
def fluid_batch_at(
    kmax: int,
    until: float,
    stop: float,
    window_start: float,
    now: float,
    max_dt: float,
    min_dt: float,
    nctx: int,
    publish_min: float,
    lay: bool,
    acc_max: float,
    f: np.ndarray,
    shared: np.ndarray,
    pend_t: np.ndarray,
    pend_m: np.ndarray,
    addr: np.ndarray,
    dims: np.ndarray,
) -> tuple[int, float, float, int, int, bool, float, int, int, float, int, float, int, int, int]:
    """``fluid_batch`` with its ``BOUND`` arrays viewed from their addresses and shapes
    (``batch_binding``; the caller keeps the arrays alive)."""
    return fluid_batch(
        kmax,
        until,
        stop,
        window_start,
        now,
        max_dt,
        min_dt,
        nctx,
        publish_min,
        lay,
        acc_max,
        f,
        shared,
        pend_t,
        pend_m,
        f8_view(addr[0], dims[0, 0]),  # t_buf
        f8_view(addr[1], dims[1, 0]),  # lat_buf
        i8_view(addr[2], dims[2, 0]),  # nf_buf
        f8_view(addr[3], dims[3, 0]),  # irqs_buf
        i8_view(addr[4], dims[4, 0]),  # ctx_nf
        f8_view(addr[5], dims[5, 0]),  # ctx_stall
        u8_view(addr[6], dims[6, 0]),  # st_g
        u8_view(addr[7], dims[7, 0]),  # st_t
        f8_view(addr[8], dims[8, 0]),  # busy
        f8_view(addr[9], dims[9, 0]),  # stall_frac
        i8_view(addr[10], dims[10, 0]),  # ep_left
        i8_view(addr[11], dims[11, 0]),  # ep_act
        f8_view(addr[12], dims[12, 0]),  # ep_phi0
        i8_view(addr[13], dims[13, 0]),  # claimed
        f8_view(addr[14], dims[14, 0]),  # blocktime
        i8_view(addr[15], dims[15, 0]),  # faults_v
        f8_view(addr[16], dims[16, 0]),  # until_v
        f8_view(addr[17], dims[17, 0]),  # rate
        f8_view(addr[18], (dims[18, 0], dims[18, 1])),  # weights
        f8_view(addr[19], dims[19, 0]),  # lock_release
        f8_view(addr[20], dims[20, 0]),  # lock_attempt
        f8_view(addr[21], (dims[21, 0], dims[21, 1])),  # act_f
        f8_view(addr[22], dims[22, 0]),  # cdf
        f8_view(addr[23], (dims[23, 0], dims[23, 1])),  # split
        i8_view(addr[24], dims[24, 0]),  # n_act
        f8_view(addr[25], (dims[25, 0], dims[25, 1])),  # seg
        i8_view(addr[26], (dims[26, 0], dims[26, 1])),  # seg_hist
        f8_view(addr[27], dims[27, 0]),  # region_faults
        i8_view(addr[28], dims[28, 0]),  # faults_out
        f8_view(addr[29], (dims[29, 0], dims[29, 1])),  # pub_f
        i8_view(addr[30], (dims[30, 0], dims[30, 1])),  # pub_i
        f8_view(addr[31], (dims[31, 0], dims[31, 1])),  # spin_f
        i8_view(addr[32], (dims[32, 0], dims[32, 1])),  # spin_i
        f8_view(addr[33], dims[33, 0]),  # fs
        i8_view(addr[34], dims[34, 0]),  # ist
        i8_view(addr[35], dims[35, 0]),  # cnt
        f8_view(addr[36], dims[36, 0]),  # cf
        i8_view(addr[37], dims[37, 0]),  # ci
        i8_view(addr[38], dims[38, 0]),  # region_of
        f8_view(addr[39], dims[39, 0]),  # tpp
        i8_view(addr[40], dims[40, 0]),  # reg_start
        i8_view(addr[41], dims[41, 0]),  # reg_idx
        i8_view(addr[42], dims[42, 0]),  # grp_start
        i8_view(addr[43], dims[43, 0]),  # grp_idx
        i8_view(addr[44], dims[44, 0]),  # group_region
        i8_view(addr[45], dims[45, 0]),  # missing
        f8_view(addr[46], dims[46, 0]),  # pending_mass
        f8_view(addr[47], (dims[47, 0], dims[47, 1])),  # sf
        i8_view(addr[48], (dims[48, 0], dims[48, 1])),  # si
    )

"""The fluid guest model: all vCPUs advance together, faults aggregated per step and per segment.

For partitions too large to follow page by page.  Every step (at most ``sim.fluid_step_s``, a
third of the current fault latency L) each vCPU that is not busy runs; episodes start at the
hazard phi = Σ_k f_k·phi_k, where f_k is the share of running time in activity k (a context of
the workload, or holding a spinlock) and phi_k = r_k·q_k its rate of touching non-resident pages.
An episode in activity k is the fault plus the rest of its segment: c ~ Exp(mean_k) more CPU
time with K ~ Poisson(c·phi_k) more faults, so it lasts c + (1+K)·L — the compound-Poisson
stall total of a segment, which is what makes an interrupts-off section touching many missing
pages last many latencies.

Spinlocks: an episode that starts while holding lock ℓ stalls the holder until it ends; every
running vCPU that wants ℓ meanwhile (at ℓ's acquisition rate) spins until the release.  RTAS calls
(from the kernel model) run on their vCPU as one episode: base CPU time plus a fault per missing
firmware page touched, taken one after another while the push drains the region (``_rtas_faults``).

Only what a lockup detector can see is published to ``CpuStates``: an episode in an interrupts-off
or preempt-off activity, or a spin, that lasts at least ``sim.fluid_publish_min_s`` (its context,
and spinning; stalled too when the latency is that long), and, when the latency L is at least that
long, each stall of an episode of user or preemptible kernel code **one at a time** (stalled for
its first fault's L, then for each later batch of its faults from the start of the vCPU's free
time plus the CPU time between two faults, ``fluid_kernel.PUB_STALL``; an end watch ends such a
stall-only publication at its end): the vCPU runs between them, as in the exact mode, so its
hrtimer, its stopper thread and its RCU quiescent states run (docs/model/agreement.md, fix 6;
commit 49a213f: publishing the whole episode, K+1 latencies, as one stall gave false soft
lockups, RCU stalls and workqueue lockups).  An RTAS call that faults at such a latency is
published stalled at each of its faults and running (hard-disabled) between them, at the CPU
times ``_rtas_faults`` drew them, as the exact mode shows it.  Shorter episodes leave the vCPU looking like it
runs normally: between short stalls it takes its interrupts.

A claimed vCPU (``GuestBase.claim``: an injected kernel bug runs there) takes no episode from
then on, is never published again and its state is left to the bug; one published stalled at the
claim is handed over when its current episode ends (the fluid mode does not know where, inside
the episode, its stall ends).

How a step runs (docs/performance.md, "Round 3: the compiled fluid step"): the whole step — the
step length and latency, the hazards, every vCPU in turn, the transfer's split, requests and
link — is one compiled call (``fluid_kernel.fluid_step``, numba where installed, the same code as
Python otherwise; draws by inversion from ``fluid_draws``), and steps run back to back in one call
while nothing else can happen before the next one (``fluid_kernel.fluid_batch``: no event, no
parked end-watch look, no episode to publish or spin, within the run's horizon), which gives the
results of one call per step.  This process then publishes what the kernel model must see, at the
time of the step that started it.  The arrays of every batch call are bound once per run
(``fluid_kernel.batch_binding``: compiled, passed by address instead of unboxed one by one at
every call; docs/performance.md, "Round 7").
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from lpmsim.config.scenario import Scenario
from lpmsim.engine.core import Batch, Environment, Event
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.base import GuestBase
from lpmsim.guest.cpustate import GUEST, CpuStates, Ctx, Task
from lpmsim.guest.metrics import GuestMetrics
from lpmsim.guest.rates import KERNEL_CONTEXTS, kernel_share, lock_hold_share, normalised
from lpmsim.hypervisor.fluid import FluidTransfer
from lpmsim.hypervisor.layout import Layout

_USER = Ctx.USER  # (an enum member looked up once)


class FluidGuest(GuestBase):
    batch = True
    """Steps run back to back in one compiled call while nothing else can happen
    (``fluid_kernel.fluid_batch``); False: one step per call, as a check
    (tests/guest/test_fluid_kernel.py): the same results."""

    skip_looks = True
    """End watches skip the looks that cannot change their answer (``_EndWatch``); False looks
    every time, as a check (tests/guest/test_fluid_speed.py): the results are the same."""

    def __init__(
        self,
        env: Environment,
        sc: Scenario,
        layout: Layout,
        cpus: CpuStates,
        streams: RngStreams,
        metrics: GuestMetrics,
    ) -> None:
        super().__init__(env, sc, layout, cpus, streams, metrics)
        self.rng = streams["guest/fluid"]
        self.transfer: FluidTransfer | None = None
        w = sc.workload
        n = sc.partition.vcpus
        nreg = len(layout.fluid_regions)
        # Activities: the six contexts, then one per lock.
        names: list[str] = []
        ctxs: list[Ctx] = []
        share: list[float] = []
        mean: list[float] = []
        rate: list[float] = []
        weights: list[np.ndarray] = []
        holds = lock_hold_share(w)
        norm = 1.0 + sum(holds.values())
        for cname, spec in w.contexts.items():
            names.append(cname)
            ctxs.append(Ctx(cname))
            share.append(spec.share / norm)
            mean.append(spec.mean_s)
            rate.append(spec.touch_rate_hz)
            weights.append(self._wvec(layout, spec.touches, nreg))
        self.nctx = len(names)
        ks = kernel_share(w)
        self.lock_attempt = []  # attempts per second of running time
        for lk in w.locks:
            names.append(lk.name)
            ctxs.append(Ctx.IRQS_SOFT_OFF if lk.irqsave else Ctx.PREEMPT_OFF)
            share.append(holds[lk.name] / norm)
            mean.append(lk.hold_mean_s)
            rate.append(lk.touch_rate_hz)
            weights.append(self._wvec(layout, {lk.region: 1.0}, nreg))
            self.lock_attempt.append(ks * lk.rate_hz / norm)
        self.names = names
        self.ctx = ctxs
        self.ctx_value = [c.value for c in ctxs]
        self.share = np.array(share)
        self.mean = np.array(mean)
        self.rate = np.array(rate) * w.touch_scale
        self.weights = np.array(weights)  # activity x region
        self.user_idx = names.index("user")
        self.idle_idx = names.index("idle")
        self.rtas_w = self._wvec(layout, {w.rtas.region: 1.0}, nreg)
        self.rtas_rate = w.rtas.touch_rate_hz * w.touch_scale
        self.publish_min = sc.sim.fluid_publish_min_s
        self.step_min = sc.sim.fluid_step_min_s  # the end watches' shortest look interval
        # per activity: a detector sees an episode in it even without a long stall
        self.visible = [
            c.value in KERNEL_CONTEXTS[1:] or c == Ctx.IRQS_HARD_OFF or a >= self.nctx
            for a, c in enumerate(ctxs)
        ]
        # The compiled step's inputs (lpmsim.guest.fluid_kernel): per activity mean_k, phi_k (set
        # each step), visible, interrupts-off, the context's row in GuestMetrics' segment tables.
        rows = list(Ctx)
        self._act_f = np.array(
            [
                mean,
                np.zeros(len(names)),
                [float(v) for v in self.visible],
                [float(c in (Ctx.IRQS_SOFT_OFF, Ctx.IRQS_HARD_OFF)) for c in ctxs],
                [float(rows.index(c)) for c in ctxs],
            ]
        )
        from lpmsim.guest import fluid_kernel
        from lpmsim.guest.fluid_draws import seed_state

        self._kern = fluid_kernel  # the compiled step (imported here: numba loads on first use)
        self._frozen_share: np.ndarray | None = None
        self.horizon: list[float] | None = None  # the run's stop time, kept by the runner
        # a batch's records (fluid_batch): interrupts-off start, fault latency and count, interrupts-off
        self._b_t = np.zeros(fluid_kernel.BATCH_MAX)
        self._b_lat = np.zeros(fluid_kernel.BATCH_MAX)
        self._b_nf = np.zeros(fluid_kernel.BATCH_MAX, dtype=np.int64)
        self._b_irqs = np.zeros(fluid_kernel.BATCH_MAX)
        self._acc = -1.0  # ``fluid_batch``'s ``acc_max`` for the next batch (-1: busy changed since)
        self._bound_arrays: tuple[np.ndarray, ...] = ()  # the arrays bound for the run (_run)

        self._st = seed_state(self.rng)  # the kernels' generator, seeded from guest/fluid
        self.lock_attempt_arr = np.array(self.lock_attempt, dtype=float)
        self._cdf = np.zeros(len(names) + len(w.locks))
        self._split = np.zeros((len(names), nreg))
        self._n_act = np.zeros(len(names), dtype=np.int64)
        self._region_faults = np.zeros(nreg)
        self._faults = np.zeros(nreg, dtype=np.int64)
        cap = fluid_kernel.buffer_size(n)
        self._pub_f = np.zeros((3, cap))
        self._pub_i = np.zeros((3, cap), dtype=np.int64)
        self._spin_f = np.zeros((2, cap))
        self._spin_i = np.zeros((2, cap), dtype=np.int64)
        # Per-vCPU state.
        self.busy = np.zeros(n)  # seconds of the current episode still to go
        self.stall_frac = np.zeros(n)  # share of that episode spent stalled (not running, not spinning)
        # The faults of an episode after its first, still to come, and the episode's activity: each
        # is taken when the previous one has been served, at the latency of its own moment.
        self.ep_left = np.zeros(n, dtype=np.int64)
        self.ep_act = np.zeros(n, dtype=np.int64)
        self.ep_phi0 = np.zeros(n)  # the episode's rate of missing touches at its start (phi_a)
        # (The publication state is Python lists: read and written at every publication, where a
        # numpy element costs several times a list's.)
        self.published = [False] * n
        self.in_rtas = [False] * n  # inside an RTAS call: its own end restores the vCPU
        # Published for one stall only (an episode the detectors cannot see but for its stalls:
        # the vCPU runs between them), and each vCPU's publication count (its end watch's key).
        self.stall_only = [False] * n
        self.pub_serial = [0] * n
        self.lock_release = np.full(len(w.locks), -np.inf)
        self.spinners = np.zeros(len(w.locks), dtype=np.int64)
        self.claimed_mask = np.zeros(n, dtype=np.int64)  # 1: claimed (an int for the compiled step)
        self.n_claimed = 0  # claimed_mask's count
        self._handover: dict[int, Callable[[], None]] = {}  # claimed while stalled: ready() at its end
        self.steps = 0  # time steps taken (benchmarks/run_bench.py)
        self.batched_steps = 0  # of which run inside another's event (lpmsim.runner's progress)
        self.next_step_at = -math.inf  # time of the next step (the episode state changes only there)
        self._skipping: dict[int, dict[_EndWatch, None]] = {}  # per vCPU: its parked end watches
        # parked end watches: (next look, order parked, watch, its generation), a heap
        self._parked: list[tuple[float, int, _EndWatch, int]] = []
        self._parked_seq = 0
        self._end_looks: dict[float, Batch] = {}  # the first looks due at each time (call_at_batched)

    @staticmethod
    def _wvec(layout: Layout, touches: dict[str, float], nreg: int) -> np.ndarray:
        v = np.zeros(nreg)
        for name, frac in normalised(touches).items():
            v[layout.fluid_index[name]] += frac
        return v

    # -- hooks the kernel model drives ---------------------------------------------------------
    def rtas_call(self, cpu: int, base_s: float) -> Event:
        """Run an RTAS call on ``cpu`` now: base CPU time plus a stall per missing page touched."""
        ev = self.env.event()
        self._disturb(cpu)
        tr = self.transfer
        extra = 0.0
        faults = 0
        lat = 0.0
        at: list[float] = []  # the CPU time into the call of each fault
        if tr is not None and tr.completed_at is None:
            lat = tr.latency()
            faults = self._rtas_faults(tr, base_s, lat, at)
            if faults:
                per = np.zeros(self.busy.size, dtype=np.int64)
                per[cpu] = faults
                self.metrics.fault_many(per, Ctx.IRQS_HARD_OFF.value, lat)
                reg = np.zeros(self.rtas_w.size, dtype=np.int64)
                reg[int(np.argmax(self.rtas_w))] = faults
                tr.request(reg, lat)
                extra = faults * lat
        wall = base_s + extra
        self.busy[cpu] = max(self.busy[cpu], wall)
        self.stall_frac[cpu] = extra / wall if wall > 0 else 0.0
        self._acc = -1.0  # the next step sums its own ``outstanding``
        self.metrics.segment(Ctx.IRQS_HARD_OFF.value, extra, wall)
        self.cpus.set_ctx(cpu, Ctx.IRQS_HARD_OFF)
        self.cpus.set_steal_frac(cpu, float(self.stall_frac[cpu]))  # the DTL sees its faults
        if faults and lat >= self.publish_min:
            # faults as long as those of an episode published stalled: the call is stalled at
            # each fault, for its latency, and runs (hard-disabled) between them, as in exact
            now = self.env.now
            for j, c in enumerate(at):
                t0 = now + c + j * lat
                self.env.call_at(t0, functools.partial(self._rtas_stall, cpu, True))
                self.env.call_at(t0 + lat, functools.partial(self._rtas_stall, cpu, False))
        self.published[cpu] = True
        self.stall_only[cpu] = False
        self.in_rtas[cpu] = True

        def done() -> None:
            self._disturb(cpu)
            self.in_rtas[cpu] = False
            self._unpublish(cpu)
            ev.succeed()

        self.env.call_at(self.env.now + wall, done)
        return ev

    def _rtas_stall(self, cpu: int, on: bool) -> None:
        """One fault of an RTAS call begins (``on``) or is served: the call's vCPU stalls for it."""
        if on and (not self.in_rtas[cpu] or cpu in self.claimed):
            return
        self.cpus.set_stalled(cpu, on)

    def _rtas_faults(self, tr: FluidTransfer, base_s: float, lat: float, at: list[float]) -> int:
        """Missing firmware pages an RTAS call of ``base_s`` CPU time faults on, one after another.

        As the exact mode's ``_execute``: touches of missing pages arrive at rtas_rate · q per CPU
        second, drawn at the current q and thinned as q drops, each fault stalling the call for
        ``lat``.  q drops with every page faulted and with the pages the background push takes
        from the region while the call stalls (``FluidTransfer.push_ahead``: the push reaches the
        region after ``ahead`` pages, then takes its pages at ``rate``); the pages of the region
        are taken as equally hot (q proportional to the region's missing pages).  A long call
        of a partition with a slow link lasts many latencies, and the push meanwhile brings in
        the pages its later touches would have faulted on.  ``at`` gets the CPU time into the
        call of each fault (where exact stalls it)."""
        region = int(np.argmax(self.rtas_w))
        sel = tr.region_of == region
        m0 = int(tr.missing[sel].sum())
        q0 = float((tr.missing[sel] * tr.tpp[sel]).sum())
        if m0 == 0 or q0 <= 0 or self.rtas_rate <= 0:
            return 0
        ahead, rate = tr.push_ahead(region)
        rng = self.rng
        cpu = 0.0
        faults = 0
        while faults < m0:
            pushed = max(0.0, rate * (cpu + faults * lat) - ahead)
            q = q0 * max(0.0, m0 - faults - pushed) / m0
            if q <= 0:
                break
            cpu += rng.exponential(1.0 / (self.rtas_rate * q))
            if cpu >= base_s:
                break
            pushed = max(0.0, rate * (cpu + faults * lat) - ahead)
            if rng.random() * q < q0 * max(0.0, m0 - faults - pushed) / m0:
                faults += 1
                at.append(cpu)
        return faults

    # -- the step process ------------------------------------------------------------------------
    def start(self, transfer: FluidTransfer) -> None:
        self.transfer = transfer
        self.metrics.window_start = self.env.now
        # Every vCPU runs a worker of the workload (the task named in lockup reports).
        for cpu in range(self.busy.size):
            if cpu not in self.claimed:
                self.cpus.set_task(cpu, Task(f"{self.sc.workload.preset}-worker", 1000 + cpu))
        self.env.process(self._run(), name="fluid-guest")

    def _claim(self, cpu: int, ready: Callable[[], None]) -> None:
        self._disturb(cpu)
        self._acc = -1.0  # (the next step sums its own ``outstanding``)
        self.claimed_mask[cpu] = True
        self.n_claimed = int(self.claimed_mask.sum())
        self.ep_left[cpu] = 0  # the episode's later faults are not taken: the bug's code runs instead
        if self.published[cpu] and GUEST in self.cpus.cpus[cpu].stall_by and not self.in_rtas[cpu]:
            self._handover[cpu] = ready  # _unpublish() at the episode's end hands it over
            return
        if self.published[cpu]:
            self.published[cpu] = False
            self.cpus.set_steal_frac(cpu, 0.0)
        ready()

    def _unpublish(self, cpu: int) -> None:
        if cpu in self.claimed:
            ready = self._handover.pop(cpu, None)
            if ready is not None and self.published[cpu]:
                self.published[cpu] = False
                self.cpus.set_steal_frac(cpu, 0.0)
                self.cpus.set_stalled(cpu, False)
                ready()
            return
        if self.published[cpu]:
            self.published[cpu] = False
            self.stall_only[cpu] = False
            # set_steal_frac(0), set_stalled(False), set_spinning(None), set_ctx(user), in this order
            self.cpus.unpublish(cpu, _USER, self.env.now)

    def _publish(
        self,
        cpu: int,
        ctx: Ctx,
        stalled: bool,
        spinning: str | None,
        until: float,
        steal_frac: float = 0.0,
        stall_only: bool = False,
    ) -> None:
        self.published[cpu] = True
        self.stall_only[cpu] = stall_only
        serial = self.pub_serial[cpu] + 1
        self.pub_serial[cpu] = serial
        # the episode's stall share (for the DTL), its context, spin and stall, in this order
        # (it enters the context, then stalls: what the detectors see at the entry counts, as in
        # exact); a publication over another replaces it (an episode not stalled after a
        # stall-only one is no longer stalled, one after a spin no longer spins)
        self.cpus.publish(cpu, steal_frac, ctx, spinning, stalled, self.env.now)
        # its end watch's first look (the watch itself is made only if it must look again); the
        # looks due at one time share a heap entry (Environment.call_at_batched: the same order)
        self.env.call_at_batched(
            until, functools.partial(self._first_look, cpu, serial, until), self._end_looks
        )

    def _first_look(self, cpu: int, serial: int, at: float) -> None:
        """The first look of the end watch of publication ``serial`` of vCPU ``cpu``, due at ``at``:
        ``_EndWatch._look`` of a watch scheduled at the publication (nothing can have changed the
        watch before its first look: only a parked watch is disturbed)."""
        if not self.published[cpu] or self.in_rtas[cpu]:
            return
        if self.stall_only[cpu]:  # a single stall: over at its end (unless published again since)
            if serial == self.pub_serial[cpu]:
                if cpu in self.claimed:
                    self._unpublish(cpu)
                else:  # _unpublish(cpu), inline (published)
                    self.published[cpu] = False
                    self.stall_only[cpu] = False
                    self.cpus.unpublish(cpu, _USER, self.env.now)
            return
        w = _EndWatch(self, cpu, serial)
        w.gen = 1
        w.target = at
        w._look(1)

    def _stall_at(self, cpu: int, ctx: Ctx, t0: float, t1: float) -> None:
        """Publish vCPU ``cpu`` stalled (in ``ctx``) from ``t0`` to ``t1``: one later stall of an
        episode the detectors see only through its stalls (``stall_only``)."""

        def begin(between_steps: bool) -> None:
            tr = self.transfer
            if cpu in self.claimed or (tr is not None and tr.completed_at is not None):
                return
            if self.published[cpu] and not self.stall_only[cpu]:
                return  # published for something the detectors see whole (an RTAS call)
            if between_steps and self._skipping.get(cpu):
                # the publication changes outside a step: the parked end watches of the one
                # before look for real (a parked look answers from the state a step left)
                self._disturb(cpu)
            self._publish(cpu, ctx, True, None, t1, 1.0, stall_only=True)

        if t0 <= self.env.now:
            begin(False)
        else:
            self.env.call_at(t0, lambda: begin(True))

    def _disturb(self, cpu: int) -> None:
        """Something outside the step changed vCPU ``cpu``'s episode state (an RTAS call, a claim):
        its end watches look again at the first time they would have looked after now."""
        watches = self._skipping.get(cpu)
        if watches:
            for w in list(watches):
                w.resume(self.env.now)

    def _run_parked(self) -> None:
        """The parked end watches' looks that fall before the next step (``_EndWatch.answer``)."""
        nxt = self.next_step_at
        heap = self._parked
        while heap and heap[0][0] < nxt:
            _t, _seq, w, gen = heapq.heappop(heap)
            if w.answer(gen, nxt):
                self._park_at(w, gen)

    def _park_at(self, w: _EndWatch, gen: int) -> None:
        self._parked_seq += 1
        heapq.heappush(self._parked, (w.target, self._parked_seq, w, gen))

    @property
    def frozen_share(self) -> np.ndarray:
        """The activity shares while frozen: frozen user time becomes idle time (made once)."""
        if self._frozen_share is None:
            s = self.share.copy()
            s[self.idle_idx] += s[self.user_idx]
            s[self.user_idx] = 0.0
            self._frozen_share = s
        return self._frozen_share

    def _batch_arrays(self, tr: FluidTransfer) -> tuple[np.ndarray, ...]:
        """The arrays ``fluid_batch`` is called with that never change identity
        (``fluid_kernel.BOUND``'s order)."""
        m = self.metrics
        return (
            self._b_t,
            self._b_lat,
            self._b_nf,
            self._b_irqs,
            m.ctx_nf,
            m.ctx_stall_s,
            self._st,
            tr._st,
            self.busy,
            self.stall_frac,
            self.ep_left,
            self.ep_act,
            self.ep_phi0,
            self.claimed_mask,
            m.blocktime,
            m.faults,
            m._until,
            self.rate,
            self.weights,
            self.lock_release,
            self.lock_attempt_arr,
            self._act_f,
            self._cdf,
            self._split,
            self._n_act,
            m.seg_stats,
            m.seg_hist,
            self._region_faults,
            self._faults,
            self._pub_f,
            self._pub_i,
            self._spin_f,
            self._spin_i,
            tr._fs,
            tr._ist,
            tr._cnt,
            tr._cf,
            tr._ci,
            tr._region_of,
            tr._tpp,
            tr._reg_start,
            tr._reg_idx,
            tr._grp_start,
            tr._grp_idx,
            tr._group_region,
            tr.missing,
            tr.pending_mass,
            tr._sf,
            tr._si,
        )

    def _run(self) -> Generator[Event | float, Any, None]:
        tr = self.transfer
        assert tr is not None
        env, m = self.env, self.metrics
        max_dt = self.sc.sim.fluid_step_s
        min_dt = min(self.sc.sim.fluid_step_min_s, max_dt)
        kmax = self._kern.BATCH_MAX if self.batch else 1
        nctx, publish_min = self.nctx, self.publish_min
        # The arrays of every call, bound once (``fluid_kernel.batch_binding``: compiled, by their
        # addresses; ``_bound_arrays`` keeps them alive)
        self._bound_arrays = self._batch_arrays(tr)
        batch, bound = self._kern.batch_binding(self._bound_arrays)
        lat_rec, nf_rec = m._lat.append, m._weight.append
        stepped, peek, parked = tr.stepped, env.peek, self._parked
        while tr.completed_at is None:
            now = env.now
            if tr._ist[3] >= tr._pend_t.size:
                tr._room()  # the pending ring is full
            # Steps run back to back in one compiled call until something else can happen: the
            # next event, the next parked end-watch look, the run's horizon (``fluid_batch``).
            until = peek()
            if parked and parked[0][0] < until:
                until = parked[0][0]
            ws = m.window_start
            h = self.horizon
            k, t_last, dt, npub, nspin, done, lat, nrec, nirq, lat_max, nf, self._acc, req, pre, push = batch(
                kmax,
                until,
                math.inf if h is None else h[0],
                -math.inf if ws is None else ws,
                now,
                max_dt,
                min_dt,
                nctx,
                publish_min,
                m._clock is not None,
                self._acc,
                self.frozen_share if self.frozen else self.share,
                tr.shared,
                tr._pend_t,
                tr._pend_m,
                *bound,
            )
            self.steps += k
            if k == 1:
                # one step (nearly every batch where events come every few ms): its fault record
                # as ``_account_batch`` appends it
                if nrec:
                    lat_rec(lat)
                    nf_rec(nf)
                    if lat_max > m.max_stall:
                        m.max_stall = lat_max
                if nirq:
                    m._irqs_off(float(self._b_irqs[0]))
            else:
                self.batched_steps += k - 1  # steps that were not an event of their own
                self._account_batch(k, nrec, nirq, lat_max)
                # the last step's time: nothing happens before it (the batch's conditions)
                self.next_step_at = t_last
                yield t_last - now
            stepped(done, req, pre, push)
            if npub:
                self._publications(npub, lat >= publish_min)
            if nspin:
                self._spins(
                    self._spin_i[0, :nspin],
                    self._spin_i[1, :nspin],
                    self._spin_f[0, :nspin],
                    self._spin_f[1, :nspin],
                )
            now = env.now
            m.window_end = now + dt
            self.next_step_at = now + dt
            if parked:
                self._run_parked()
            # (a delay, not a Timeout: the same place in the order, one object less; the looks
            # ``_run_parked`` schedules all fall before it)
            yield dt
        m.window_end = env.now
        for cpu in [c for c, p in enumerate(self.published) if p and not self.in_rtas[c]]:
            self._unpublish(cpu)

    def _publications(self, npub: int, long_stall: bool) -> None:
        """What the last step of a batch returned to publish (``fluid_kernel.PUB_*``)."""
        kern = self._kern
        whole, first_stall = kern.PUB_WHOLE, kern.PUB_FIRST_STALL
        pf, pi = self._pub_f, self._pub_i
        # _publish(cpu, ctx, stalled, None, until, steal_frac, stall_only), inline for the two
        # kinds published now: the same writes and calls, with what they use bound once
        ctxs = self.ctx
        published, stall_only, pub_serial = self.published, self.stall_only, self.pub_serial
        publish = self.cpus.publish
        call_at_batched = self.env.call_at_batched
        partial = functools.partial
        first_look = self._first_look
        looks = self._end_looks
        t = self.env.now  # (nothing moves the clock meanwhile: the publications' time)
        for j, (cpu, act, kind, until, steal) in enumerate(
            zip(
                pi[0, :npub].tolist(),
                pi[1, :npub].tolist(),
                pi[2, :npub].tolist(),
                pf[0, :npub].tolist(),
                pf[1, :npub].tolist(),
                strict=True,
            )
        ):
            if kind == first_stall:  # (the most frequent kind: a stall-only episode's first stall)
                stalled, steal, only = True, 1.0, True
            elif kind == whole:
                stalled, only = long_stall, False
            else:
                self._stall_at(cpu, ctxs[act], float(pf[2, j]), until)
                continue
            published[cpu] = True
            stall_only[cpu] = only
            serial = pub_serial[cpu] + 1
            pub_serial[cpu] = serial
            publish(cpu, steal, ctxs[act], None, stalled, t)
            call_at_batched(until, partial(first_look, cpu, serial, until), looks)

    def _account_batch(self, k: int, nrec: int, nirq: int, lat_max: float) -> None:
        """The metrics of ``k`` steps of a batch (``fluid_kernel.fluid_batch``): its ``nrec``
        fault records (latency, faults of each step with faults), its ``nirq`` longest
        interrupts-off episodes (at their step's time); the faults per context are in
        ``GuestMetrics.ctx_nf`` (the kernel adds them)."""
        m = self.metrics
        if nrec:
            # appended in step order as ``record_counted`` would, all at once
            m._lat.frombytes(self._b_lat[:nrec].tobytes())
            m._weight.frombytes(self._b_nf[:nrec].tobytes())
            m.max_stall = max(m.max_stall, lat_max)
        if nirq:
            if k == 1:
                m._irqs_off(float(self._b_irqs[0]))
            else:
                for wall, at in zip(self._b_irqs[:nirq].tolist(), self._b_t[:nirq].tolist(), strict=True):
                    # (a shorter run than the longest so far changes nothing there: not handed over)
                    if wall >= m.max_irqs_off:
                        m._irqs_off(wall, at)

    def _spins(self, who: np.ndarray, locks: np.ndarray, wall: np.ndarray, at: np.ndarray) -> None:
        """vCPUs that wanted a lock while its holder was stalled: they spin until the release."""
        m = self.metrics
        for i in range(who.size):
            cpu, lock, dur = int(who[i]), int(locks[i]), float(wall[i])
            if dur <= 0:
                continue
            m.spun(cpu, dur)
            self.spinners[lock] += 1
            m.spinners(int(self.spinners[lock]))
            name = self.names[self.nctx + lock]
            if dur >= self.publish_min:
                self._publish(cpu, self.ctx[self.nctx + lock], False, name, float(at[i]) + dur)

            def release(lock: int = lock) -> None:
                self.spinners[lock] -= 1

            self.env.call_at(max(self.env.now, float(at[i]) + dur), release)


class _EndWatch:
    """Looks at the end of a published episode whether the vCPU's episode is over; if not, looks
    again when its known part is over (the episode outlasted its estimate: its later faults met a
    longer latency, or another followed back to back).

    The episode state (``busy``, ``ep_left``) changes only at a fluid step, in an RTAS call or a
    claim; the last two call ``FluidGuest._disturb``.  So every look between two steps repeats the
    answer of the state left by the step before it.  With ``FluidGuest.skip_looks`` the watch does
    not schedule the looks that find the episode not over: it computes their times (the same float
    additions as scheduling each from the one before) and *parks* until the step before its next
    look (``FluidGuest._parked``); that step's ``_run_parked`` answers the look from the state the
    step left, and schedules a real look only where the episode is over (there ``_unpublish``
    runs, at the same time as without skipping).  A disturbance between a step and a parked look
    makes the first look after it real again (``resume``).
    """

    __slots__ = ("cpu", "first", "g", "gen", "origin", "serial", "step", "target")

    def __init__(self, g: FluidGuest, cpu: int, serial: int) -> None:
        self.g = g
        self.cpu = cpu
        self.gen = 0
        self.origin = 0.0  # the last look (real or answered while parked), and the step from there
        self.step = 0.0
        self.first = -math.inf  # a look answered while parked but still in the future
        self.target = 0.0  # the next look owed (scheduled, or parked)
        self.serial = serial  # the publication it watches

    def schedule(self, at: float) -> None:
        self.gen += 1
        gen = self.gen
        self.target = at
        self.g.env.call_at(at, lambda: self._look(gen))

    def _look(self, gen: int) -> None:
        if gen != self.gen:
            return  # re-scheduled by a disturbance
        g, cpu = self.g, self.cpu
        skipping = g._skipping.get(cpu)
        if skipping is not None:
            skipping.pop(self, None)
        if not g.published[cpu] or g.in_rtas[cpu]:
            return
        if g.stall_only[cpu]:  # a single stall: over at its end (unless published again since)
            if self.serial == g.pub_serial[cpu]:
                g._unpublish(cpu)
            return
        busy = float(g.busy[cpu])
        if busy > 1e-12 or g.ep_left[cpu] > 0:
            now = g.env.now
            d = max(busy, g.step_min)
            t = _after(now, d)
            if g.skip_looks and now >= 1.0:
                while t < g.next_step_at:
                    t = _after(t, d)
                self.origin, self.step, self.first = now, d, -math.inf
                self._park(t)
                return
            self.schedule(t)
            return
        g._unpublish(cpu)

    def _park(self, t: float) -> None:
        self.gen += 1
        self.target = t
        self.g._park_at(self, self.gen)
        self.g._skipping.setdefault(self.cpu, {})[self] = None

    def answer(self, gen: int, next_step: float) -> bool:
        """At the end of a step (``now``, the next at ``next_step``): answer the parked look, which
        falls before the next step.  Returns whether the watch stays parked (a later look)."""
        if gen != self.gen:
            return False  # made real by a disturbance
        g, cpu = self.g, self.cpu
        t = self.target
        if not g.published[cpu] or g.in_rtas[cpu] or g.stall_only[cpu]:
            # the look would return (nothing before it can publish the vCPU but an RTAS call,
            # whose end unpublishes it, or a stall of an episode going on, which disturbs it):
            # the watch ends
            self._forget()
            return False
        busy = float(g.busy[cpu])
        if busy > 1e-12 or g.ep_left[cpu] > 0:
            d = max(busy, g.step_min)
            nxt = _after(t, d)
            while nxt < next_step:
                nxt = _after(nxt, d)
            self.origin, self.step, self.first = t, d, t
            self.target = nxt
            return True
        # the episode is over: the look at t is a real one (it unpublishes)
        self._forget()
        self.schedule(t)
        return False

    def _forget(self) -> None:
        self.gen += 1
        skipping = self.g._skipping.get(self.cpu)
        if skipping is not None:
            skipping.pop(self, None)

    def resume(self, now: float) -> None:
        """A disturbance at ``now``: the first look at or after it that parking left out is
        scheduled as a real one."""
        if now <= self.first:
            self._forget()
            self.schedule(self.first)  # a look answered in advance: it must see the disturbance
            return
        t = _after(self.origin, self.step)
        while t < now:
            t = _after(t, self.step)
        if t < self.target or not self._is_parked():
            self._forget()
            self.schedule(t)

    def _is_parked(self) -> bool:
        return self in self.g._skipping.get(self.cpu, {})


def _after(t: float, d: float) -> float:
    """The time of an event scheduled at ``t`` for ``t + d`` (``Environment.call_at`` stores
    ``now + (time - now)``)."""
    return t + ((t + d) - t)

"""The exact guest model: every vCPU runs its workload segment by segment, page faults one by one.

Each vCPU is a process of the event core:

1. draw the next context (semi-Markov, ``guest.workload``) and its CPU time c;
2. execute c seconds of CPU time in that context: touches of non-resident pages arrive as a
   Poisson process of rate r_k · q_k(t), q_k the touch mass of the non-resident pages of the
   context's regions (drawn at the current q and thinned as pages arrive, which is exact because
   q only decreases); each such touch stalls the vCPU in the hypervisor until the page arrives
   (``ExactLink.fault``: one request per page, later faulters wait for the same page);
3. in kernel contexts, spinlock acquisitions arrive at the locks' rates: the vCPU spins (FIFO) if
   the lock is held, then holds it for its CPU time, touching the lock's region;
4. at every segment boundary it serves the kernel's requests for this vCPU: an RTAS call (global
   RTAS lock, interrupts hard-disabled, touching the RTAS region), a stop_machine rendezvous.

The vCPU's observable state is kept in ``CpuStates`` throughout (context, stalled, spinning,
current task), which is what the kernel's detectors read.  A "segment" stands for a run of code in
one context; consecutive short sections of the same kind are one segment (docs/model/guest.md).

A claimed vCPU (``GuestBase.claim``: an injected kernel bug runs there) is let go at once — the
locks it holds are released, it leaves the queue of a lock it spins on (the workload's critical
section is abandoned: the bug is not modelled as running inside it) — or, stalled on a fault,
when the page arrives; its process never writes its state again and ends at its next wake-up.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Generator
from itertools import accumulate, chain
from operator import mul
from typing import Any, ClassVar, Protocol

import numpy as np

from lpmsim.config.scenario import Scenario
from lpmsim.engine.core import Environment, Event
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.base import GuestBase
from lpmsim.guest.cpustate import GUEST, CpuStates, Ctx, Task
from lpmsim.guest.locks import Spinlock
from lpmsim.guest.metrics import GuestMetrics
from lpmsim.guest.rates import KERNEL_CONTEXTS, normalised
from lpmsim.hypervisor.exact import ExactLink, ExactPages
from lpmsim.hypervisor.layout import Layout

RTAS_LOCK = "rtas_lock"

_IDLE = Ctx.IDLE
# Enum members as module constants: ``Ctx.X`` is a class attribute lookup through the enum's
# metaclass (~0.2 µs, several times that on a loaded machine), at every lock acquisition.
_SOFT_OFF = Ctx.IRQS_SOFT_OFF
_PREEMPT_OFF = Ctx.PREEMPT_OFF
_IRQS_OFF = frozenset({Ctx.IRQS_SOFT_OFF, Ctx.IRQS_HARD_OFF})  # where ``GuestMetrics.segment`` notes a run
_INF = float("inf")
# ``ctx.value`` of an enum member is a property (slow on the hot path): the values looked up once.
_VALUE = {c: c.value for c in Ctx}

# How strictly a context masks interrupts and preemption (a lock never relaxes its caller's state).
_STRICTNESS = {Ctx.PREEMPT_OFF: 1, Ctx.IRQS_SOFT_OFF: 2, Ctx.IRQS_HARD_OFF: 3}

Proc = Generator[Event | float, Any, None]  # a float: resume that many seconds later


# Random numbers are drawn this many at a time from each of a vCPU's streams (``VcpuDraws``).
BLOCK = 256


class Draws(Protocol):
    """What the vCPU's code draws from: ``VcpuDraws``, or a numpy ``Generator`` (the tests)."""

    def random(self) -> float: ...

    def standard_exponential(self) -> float: ...

    def exponential(self, scale: float) -> float: ...


def _blocks(streams: RngStreams, name: str, draw: str, *args: float) -> Callable[[], float]:
    """The values of ``streams[name].<draw>(*args, size=BLOCK)``, block after block, one per call
    (the stream is made at the first call: a context a vCPU never enters costs nothing)."""

    def gen() -> Generator[array[float], None, None]:
        f = getattr(streams[name], draw)
        while True:
            block = array("d")  # 8 bytes a number (a list of floats: 32); read out as Python floats
            block.frombytes(f(*args, size=BLOCK).tobytes())
            yield block

    return chain.from_iterable(gen()).__next__


class VcpuDraws:
    """One vCPU's random numbers, drawn in blocks of ``BLOCK`` from named streams of their own and
    consumed in order: ``guest/vcpu/<cpu>/uniform`` (the context, lock and region choices, the
    thinning of touches, the page of a fault), ``guest/vcpu/<cpu>/exponential`` (the CPU time to
    the next touch of a missing page, the gap to the next lock, a lock's hold time: standard
    exponentials times the mean) and ``guest/vcpu/<cpu>/gamma/<k>`` (the CPU time of a segment in
    context k: standard gamma variates of the context's shape times its scale).  The laws are
    those of single numpy draws; only the order in which the numbers come out of the generators
    differs (a speed change: one numpy call per ``BLOCK`` numbers instead of one per number,
    ~0.5-1 µs each).  Each stream depends only on (seed, name), so runs stay identical in any
    process and with any ``--jobs``."""

    __slots__ = ("gamma_of", "next_e", "next_u")

    def __init__(self, streams: RngStreams, cpu: int, shapes: list[float]) -> None:
        pre = f"guest/vcpu/{cpu}"
        self.next_u = _blocks(streams, f"{pre}/uniform", "random")
        self.next_e = _blocks(streams, f"{pre}/exponential", "standard_exponential")
        self.gamma_of = [
            _blocks(streams, f"{pre}/gamma/{k}", "standard_gamma", a) for k, a in enumerate(shapes)
        ]

    def random(self) -> float:
        return self.next_u()

    def standard_exponential(self) -> float:
        return self.next_e()

    def exponential(self, scale: float) -> float:
        return self.next_e() * scale


def _draw_fns(rng: Draws) -> tuple[Callable[[], float], Callable[[], float]]:
    """(standard exponential, uniform) of ``rng``: a ``VcpuDraws``' block readers themselves."""
    if isinstance(rng, VcpuDraws):
        return rng.next_e, rng.next_u
    return rng.standard_exponential, rng.random


def _never(_t: float) -> bool:
    """``Environment.wake_inline`` when a vCPU always yields (``ExactGuest.inline_wakes``)."""
    return False


class _Claimed(Exception):
    """Raised inside a vCPU process that wakes up after its vCPU was claimed: it unwinds and ends."""


class _Touch:
    """Where one activity's touches go, for one vCPU: exact-region indices and weights.

    ``live``: the (region, weight) pairs without the regions that are wholly resident as of
    ``ExactPages.regions_done`` = ``done`` (they stay so: a page is sent once), for the touch
    mass ``sum(w·m)``.  A wholly resident region's term is ``w · 0.0 = +0.0``, and adding +0.0
    to a sum of non-negative floats leaves it as it is, so the sum is the same float without it.
    """

    __slots__ = ("done", "live", "rate", "regions", "weights")

    prune_resident: ClassVar[bool] = True
    """False keeps every region in the sums, as a check (tests/foundation/test_exact_speed.py)."""

    def __init__(self, rate: float, regions: list[int], weights: list[float]) -> None:
        self.rate = rate
        self.regions = regions
        self.weights = weights
        self.live = tuple(zip(regions, weights, strict=True))
        self.done = -1  # never pruned

    def prune(self, pages: ExactPages) -> None:
        """Drop the wholly resident regions from ``live``."""
        count = pages.region_count
        keep = self.prune_resident
        self.live = tuple(
            (r, w) for r, w in zip(self.regions, self.weights, strict=True) if count[r] > 0 or not keep
        )
        self.done = pages.regions_done


def _cdf(p: np.ndarray) -> list[float]:
    """The cdf ``Generator.choice(n, p=p)`` searches: ``u = random()`` then the first index whose
    cdf value exceeds u is the draw (``searchsorted(..., side="right")``, i.e. ``bisect_right``).
    Built with the same numpy operations as ``choice``, so the draws are the same."""
    cdf = np.asarray(p, dtype=np.float64).cumsum()
    cdf /= cdf[-1]
    return [float(x) for x in cdf]


def small_cdf(w: list[float]) -> list[float]:
    """``_cdf(np.array(w) / np.array(w).sum())`` in Python floats, for fewer than 8 weights: numpy
    sums fewer than 8 doubles one after the other (its pairwise summation starts at 8), and its
    ``cumsum`` and divisions are the same IEEE operations, so the floats are the same (tested
    against the numpy path in tests/guest/test_small_cdf.py)."""
    tot = w[0]
    for x in w[1:]:
        tot += x
    cum = list(accumulate([x / tot for x in w]))
    last = cum[-1]
    return [x / last for x in cum]


def _pick(cdf: list[float], rng: Draws) -> int:
    """``rng.choice(len(cdf), p=...)`` for the ``p`` that ``cdf`` was built from."""
    return bisect_right(cdf, rng.random())


def _first_touch(
    link: ExactLink,
    tc: _Touch,
    mm: list[float],
    sexp: Callable[[], float],
    now: float,
) -> tuple[float, float]:
    """The first-touch draw of a run of CPU time: bring the link to ``now``, the touch mass
    ``q0 = sum(w·m)`` of the non-resident pages of ``tc``'s regions (m: ``mm``, the pages'
    ``ExactPages.mm``), and the CPU time ``t`` to the
    next touch of a missing page, Exp(mean 1/phi) with ``phi = rate·q0`` (a standard exponential
    from ``sexp`` divided by phi; ``inf`` when nothing is missing). Returns ``(t, q0)``.  The one
    place this draw is written but two: ``_execute``, ``_execute_from`` and the critical sections
    call it; the segment loop (``ExactGuest._vcpu``) has it written out at its two call sites
    (a call and a tuple less per segment), which must stay the same operations."""
    if now >= link.due:  # ``link.advance(now)`` without the call when it would do nothing
        link.advance(now)
    if tc.done != link.pages.regions_done:
        tc.prune(link.pages)
    # ``sum(map(mul, weights, map(mass_of, regions)))``: the same products added in the same
    # order from 0.0 (as ``sum`` does), less the +0.0 terms of wholly resident regions
    q0 = 0.0
    for r, w in tc.live:
        q0 += w * mm[r]
    phi = tc.rate * q0
    return (sexp() / phi if phi > 0 else _INF), q0


class ExactGuest(GuestBase):
    """All vCPUs of the partition, page-exact."""

    inline_wakes: ClassVar[bool] = True
    """Let a vCPU go on without a yield where its wake-up would be the next event anyway
    (``Environment.wake_inline``); False always yields, as a check
    (tests/foundation/test_exact_speed.py): the results are the same."""

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
        self.link: ExactLink | None = None
        w = sc.workload
        self.ctx_names = [Ctx(c) for c in w.contexts]
        self.ctx_spec = [w.contexts[c.value] for c in self.ctx_names]
        self.locks = {lk.name: Spinlock(env, lk.name, lk.irqsave) for lk in w.locks}
        self.locks[RTAS_LOCK] = Spinlock(env, RTAS_LOCK, irqsave=True)
        self.lock_specs = list(w.locks)
        self.lock_rate = sum(lk.rate_hz for lk in w.locks)
        self.requests: list[deque[tuple[str, float, Event]]] = [deque() for _ in range(sc.partition.vcpus)]
        self.tasks = [Task(f"{w.preset}-worker", 1000 + i) for i in range(sc.partition.vcpus)]
        self.spinning_now = 0
        self._stop_release: Event | None = None
        self._faulting: set[int] = set()  # vCPUs stalled on a fault now
        self._lock_wait: dict[int, Spinlock] = {}  # vCPU -> the lock it spins on
        self._handover: dict[int, Callable[[], None]] = {}  # claimed while faulting: ready() after
        # What every segment needs, computed once: the jump chain's cdf (normal and frozen), each
        # context's gamma parameters and kind, the lock choice's cdf.
        self._ctx_cdfs: dict[bool, list[float]] = {}
        self._gamma = [(1.0 / s.cv**2, s.mean_s * s.cv**2) for s in self.ctx_spec]
        self._ctx_value = [c.value for c in self.ctx_names]
        self._in_kernel = [c.value in KERNEL_CONTEXTS for c in self.ctx_names]
        self._is_idle = [c == Ctx.IDLE for c in self.ctx_names]
        lock_p = np.array([lk.rate_hz for lk in self.lock_specs])
        self._lock_cdf = _cdf(lock_p / lock_p.sum()) if self.lock_rate > 0 else []

    # -- setup -----------------------------------------------------------------------------------
    def _touch(self, cpu: int, rate: float, weights: dict[str, float]) -> _Touch:
        regs: list[int] = []
        ws: list[float] = []
        for name, frac in normalised(weights).items():
            regs.append(self.layout.region_of_cpu(name, cpu))
            ws.append(frac)
        return _Touch(rate * self.sc.workload.touch_scale, regs, ws)

    def start(self, link: ExactLink) -> None:
        """Start every vCPU (at resume: before it the source serves every touch)."""
        self.link = link
        self.metrics.window_start = self.env.now
        for cpu in range(self.sc.partition.vcpus):
            if cpu not in self.claimed:
                self.env.process(self._vcpu(cpu), name=f"vcpu{cpu}")

    # -- claim (an injected bug takes the vCPU) --------------------------------------------------
    def _claim(self, cpu: int, ready: Callable[[], None]) -> None:
        if cpu in self._faulting:
            self._handover[cpu] = ready  # the bug starts when the page arrives
            return
        self._let_go(cpu)
        ready()

    def _let_go(self, cpu: int) -> None:
        """Drop the workload's hold on the vCPU's locks (held, or spun on)."""
        lock = self._lock_wait.pop(cpu, None)
        if lock is not None:
            lock.cancel(cpu)
            self.spinning_now -= 1
        for lk in self.locks.values():
            if lk.holder == cpu:
                lk.release(cpu)

    def _check(self, cpu: int) -> None:
        """After every wake-up of a vCPU process: end it if its vCPU was claimed meanwhile."""
        if cpu in self.claimed:
            ready = self._handover.pop(cpu, None)
            if ready is not None:
                self._let_go(cpu)
                ready()
            raise _Claimed

    # -- hooks the kernel model drives ---------------------------------------------------------
    def rtas_call(self, cpu: int, base_s: float) -> Event:
        """Run an RTAS call of ``base_s`` CPU time on ``cpu`` at its next segment boundary.

        Before resume and after the transfer completed every page is resident and the vCPU
        processes are dormant: the call is then just ``base_s`` with interrupts hard-disabled
        under the RTAS lock."""
        ev = self.env.event()
        if self.running:
            self.requests[cpu].append(("rtas", base_s, ev))
        else:
            self.env.process(self._dormant_rtas(cpu, base_s, ev), name=f"rtas{cpu}")
        return ev

    @property
    def running(self) -> bool:
        return self.link is not None and self.link.completed_at is None

    def _dormant_rtas(self, cpu: int, base_s: float, done: Event) -> Proc:
        lock = self.locks[RTAS_LOCK]
        prev = self.cpus.cpus[cpu].guest_ctx
        ev = lock.acquire(cpu)
        if ev is not None:
            # raw_spin_lock_irqsave: the waiter spins soft-masked (rtas.c)
            self.cpus.set_ctx(cpu, Ctx.IRQS_HARD_OFF if prev == Ctx.IRQS_HARD_OFF else Ctx.IRQS_SOFT_OFF)
            self.cpus.set_spinning(cpu, lock.name)
            yield ev
            self.cpus.set_spinning(cpu, None)
        self.cpus.set_ctx(cpu, Ctx.IRQS_HARD_OFF)  # do_enter_rtas(): hard_irq_disable()
        yield float(base_s)
        lock.release(cpu)
        self.cpus.set_ctx(cpu, prev)
        done.succeed()

    # -- the vCPU process ------------------------------------------------------------------------
    def _ctx_p(self, frozen: bool) -> np.ndarray:
        """The jump chain's weights of the next context (semi-Markov)."""
        p = np.array([s.share / s.mean_s for s in self.ctx_spec])
        if frozen:
            for i, c in enumerate(self.ctx_names):
                if c == Ctx.USER:
                    p[i] = 0.0
        return p

    def _next_ctx(self, rng: Draws) -> int:
        frozen = self.frozen
        cdf = self._ctx_cdfs.get(frozen)
        if cdf is None:
            p = self._ctx_p(frozen)
            if not p.sum() > 0:  # nothing may run: numpy's error says so (no number is used)
                return int(np.random.default_rng(0).choice(p.size, p=p / p.sum()))
            cdf = self._ctx_cdfs[frozen] = _cdf(p / p.sum())
        return _pick(cdf, rng)

    def _vcpu(self, cpu: int) -> Proc:
        """The vCPU's process: its segments until the transfer completes (ends when the vCPU
        is claimed: ``_Claimed``).  One generator, so that each wake-up resumes one frame."""
        try:
            self._check(cpu)
            rng = VcpuDraws(self.streams, cpu, [shape for shape, _scale in self._gamma])
            touches = [self._touch(cpu, s.touch_rate_hz, s.touches) for s in self.ctx_spec]
            lock_touch = {
                lk.name: self._touch(cpu, lk.touch_rate_hz, {lk.region: 1.0}) for lk in self.lock_specs
            }
            rtas = self.sc.workload.rtas
            rtas_touch = self._touch(cpu, rtas.touch_rate_hz, {rtas.region: 1.0})
            cpus = self.cpus
            states = cpus.cpus
            set_ctx = cpus.set_ctx
            env = self.env
            metrics = self.metrics
            blocktime = metrics.blocktime
            requests = self.requests[cpu]
            ctx_names, ctx_value = self.ctx_names, self._ctx_value
            scales = [scale for _shape, scale in self._gamma]
            irqs_off = [c in _IRQS_OFF for c in ctx_names]
            in_kernel, is_idle = self._in_kernel, self._is_idle
            lock_specs, lock_cdf, locks = self.lock_specs, self._lock_cdf, self.locks
            lock_rate = self.lock_rate
            lock_gap = 1.0 / lock_rate if lock_rate > 0 else 0.0
            gamma_of, sexp, random = rng.gamma_of, rng.next_e, rng.next_u
            ctx_cdfs = self._ctx_cdfs
            # what a segment in context k reads, one tuple per k (one lookup instead of several):
            # (ctx, gamma draw, gamma scale, idle, kernel context with locks, touches,
            # interrupts off, ctx value)
            spec = [
                (
                    ctx_names[k],
                    gamma_of[k],
                    scales[k],
                    is_idle[k],
                    in_kernel[k] and lock_rate > 0,
                    touches[k],
                    irqs_off[k],
                    ctx_value[k],
                )
                for k in range(len(ctx_names))
            ]
            state = states[cpu]
            swapper = Task(f"swapper/{cpu}", 0)  # immutable: one for the vCPU's whole life
            link = self.link
            assert link is not None
            pages = link.pages
            mm = pages.mm  # the regions' missing mass, updated in place
            claimed = self.claimed
            wake_inline = env.wake_inline if self.inline_wakes else _never
            heap = env.heap  # (read only: an event due by a wake-up's time means it must yield)
            # True while this process runs in the callback of its own wake-up (a ``yield`` of a
            # delay), the last callback of that event: only then may it skip a yield (``wake_inline``)
            own_wake = False
            while link.completed_at is None:
                while requests:
                    own_wake = False
                    kind, base, done = requests.popleft()
                    if kind == "rtas":
                        yield from self._rtas(cpu, base, rtas_touch, rng)
                    done.succeed()
                cdf = ctx_cdfs.get(self.frozen)
                k = bisect_right(cdf, random()) if cdf is not None else self._next_ctx(rng)
                ctx, gamma, scale, idle, locking, tc, ioff, value = spec[k]
                c = gamma() * scale
                if idle != (state.guest_ctx == _IDLE):
                    cpus.set_task(cpu, swapper if idle else self.tasks[cpu])
                t0 = env.now
                if state.guest_ctx != ctx:  # ``set_ctx`` returns at once for the same context
                    set_ctx(cpu, ctx, GUEST, t0)
                if locking:
                    left = c
                    # No fault and no lock yet in this segment: the vCPU's blocked time is what it was
                    # at the segment's start (only this process adds to it), so it is read only
                    # before the first of them, and without either the stall is 0.0.
                    plain = True
                    stall0 = 0.0
                    while True:
                        t = sexp() * lock_gap
                        last = t >= left
                        piece = left if last else t
                        if piece > 0:
                            # ``yield from self._execute(cpu, ctx, piece, tc, rng)``, its first draw
                            # here: ``tt, q0 = _first_touch(link, tc, mm, sexp, env.now)``
                            # written out (the segment loop's hot path; the same operations)
                            now = env.now
                            if now >= link.due:
                                link.advance(now)
                            if tc.done != pages.regions_done:
                                tc.prune(pages)
                            q0 = 0.0
                            for r, w in tc.live:
                                q0 += w * mm[r]
                            phi = tc.rate * q0
                            tt = sexp() / phi if phi > 0 else _INF
                            if tt >= piece:
                                tw = now + piece
                                if not (own_wake and not (heap and heap[0][0] <= tw) and wake_inline(tw)):
                                    yield piece
                                own_wake = True
                                if cpu in claimed:
                                    self._check(cpu)
                            else:
                                if plain:
                                    plain = False
                                    stall0 = blocktime.item(cpu)
                                own_wake = False
                                yield from self._execute_from(cpu, ctx, piece, tt, q0, tc, rng)
                        if last:
                            break
                        left -= t
                        lk = lock_specs[_pick(lock_cdf, rng)]
                        hold = sexp() * lk.hold_mean_s
                        if plain:
                            plain = False
                            stall0 = blocktime.item(cpu)
                        own_wake = False
                        yield from self._locked(cpu, locks[lk.name], hold, lock_touch[lk.name], rng)
                        set_ctx(cpu, ctx, GUEST, env.now)
                    if not plain:
                        metrics.segment(value, blocktime.item(cpu) - stall0, env.now - t0)
                    elif ioff:
                        metrics.irqs_off_segment(env.now - t0)  # ``segment(ctx, 0.0, ...)``
                elif c > 0:
                    # ``yield from self._execute(cpu, ctx, c, touches[k], rng)`` with its first draw here:
                    # most segments end without a touch of a missing page (no generator then)
                    # ``t, q0 = _first_touch(link, tc, mm, sexp, t0)`` written out
                    if t0 >= link.due:
                        link.advance(t0)
                    if tc.done != pages.regions_done:
                        tc.prune(pages)
                    q0 = 0.0
                    for r, w in tc.live:
                        q0 += w * mm[r]
                    phi = tc.rate * q0
                    t = sexp() / phi if phi > 0 else _INF
                    if t >= c:
                        # ``yield c``, or, when this vCPU's wake-up would be the next event anyway and
                        # this process runs in its own wake-up, go on at once (``wake_inline``)
                        tw = t0 + c
                        if not (own_wake and not (heap and heap[0][0] <= tw) and wake_inline(tw)):
                            yield c
                        own_wake = True
                        if cpu in claimed:
                            self._check(cpu)
                        # No fault: the stall is 0.0 (only this process adds to the vCPU's blocked
                        # time), so ``metrics.segment`` would only note an interrupts-off run.
                        if ioff:
                            metrics.irqs_off_segment(env.now - t0)  # ``segment(ctx, 0.0, ...)``
                    else:
                        own_wake = False
                        stall0 = blocktime.item(cpu)
                        yield from self._execute_from(cpu, ctx, c, t, q0, tc, rng)
                        metrics.segment(value, blocktime.item(cpu) - stall0, env.now - t0)
                elif ioff:
                    metrics.segment(value, 0.0, 0.0)
            # Transfer complete: nothing can stall any more; the vCPU runs on, dormant, looking normal.
            while requests:
                _kind, base, done = requests.popleft()
                yield from self._rtas(cpu, base, rtas_touch, rng)
                done.succeed()
            cpus.set_task(cpu, self.tasks[cpu])
            cpus.set_ctx(cpu, Ctx.USER)
        except _Claimed:
            return

    def _execute(self, cpu: int, ctx: Ctx, cpu_time: float, tc: _Touch, rng: Draws) -> Proc:
        """``cpu_time`` seconds of CPU time touching pages per ``tc``; stalls on missing pages."""
        if not cpu_time > 0:
            return
        link = self.link
        assert link is not None
        t, q0 = _first_touch(link, tc, link.pages.mm, _draw_fns(rng)[0], self.env.now)
        if t >= cpu_time:
            yield cpu_time
            if cpu in self.claimed:
                self._check(cpu)
            return
        yield from self._execute_from(cpu, ctx, cpu_time, t, q0, tc, rng)

    def _execute_from(
        self, cpu: int, ctx: Ctx, left: float, t: float, q0: float, tc: _Touch, rng: Draws
    ) -> Proc:
        """The rest of ``_execute`` once its draw says a touch comes at ``t`` < ``left`` (the
        touch mass then ``q0``): the same steps, in the same order, as one loop."""
        link = self.link
        assert link is not None
        pages = link.pages
        mm = pages.mm  # the regions' missing mass, updated in place as pages arrive
        mass_of = mm.__getitem__
        env = self.env
        claimed = self.claimed
        regions, weights = tc.regions, tc.weights
        sexp, random = _draw_fns(rng)
        value = _VALUE[ctx]
        while True:
            yield t
            if cpu in claimed:
                self._check(cpu)
            left -= t
            if env.now >= link.due:
                link.advance(env.now)
            terms = list(map(mul, weights, map(mass_of, regions)))
            q = sum(terms)
            if random() * q0 < q:
                if len(terms) == 1:
                    random()  # what ``choice`` of one item draws
                    region = regions[0]
                elif len(terms) < 8:
                    region = regions[bisect_right(small_cdf(terms), random())]
                else:
                    wts = np.array(terms)
                    region = regions[_pick(_cdf(wts / wts.sum()), rng)]
                page = pages.sample_missing(region, rng)
                ev = link.fault(page)
                if ev is not None:
                    t0 = env.now
                    self.cpus.set_stalled(cpu, True, GUEST, t0)
                    self._faulting.add(cpu)
                    yield ev
                    self._faulting.discard(cpu)
                    self.cpus.set_stalled(cpu, False, GUEST, env.now)
                    self.metrics.fault(cpu, value, env.now - t0)
                    self._check(cpu)
            if not left > 0:
                return
            t, q0 = _first_touch(link, tc, mm, sexp, env.now)
            if t >= left:
                yield left
                if cpu in claimed:
                    self._check(cpu)
                return

    def _locked(
        self,
        cpu: int,
        lock: Spinlock,
        hold: float,
        tc: _Touch,
        rng: Draws,
        ctx: Ctx | None = None,
        held_ctx: Ctx | None = None,
    ) -> Proc:
        """Acquire ``lock`` (spinning if needed), run ``hold`` CPU seconds under it, release.

        The lock's interrupt state never relaxes the caller's: a plain spin_lock taken inside an
        interrupts-off section keeps interrupts off.  The spin counts in the section's length.
        ``held_ctx``: the context once the lock is held (the RTAS lock's holder hard-disables)."""
        if ctx is None:
            ctx = _SOFT_OFF if lock.irqsave else _PREEMPT_OFF
            cur = self.cpus.cpus[cpu].guest_ctx
            if _STRICTNESS.get(cur, 0) > _STRICTNESS[ctx]:
                ctx = cur
        if held_ctx is not None and lock.holder is None:
            ctx = held_ctx  # taken at once: straight to the holder's context
        t_enter = self.env.now
        self.cpus.set_ctx(cpu, ctx, GUEST, t_enter)
        ev = lock.acquire(cpu)
        if ev is not None:
            t0 = self.env.now
            self.spinning_now += 1
            self.metrics.spinners(self.spinning_now)
            self.cpus.set_spinning(cpu, lock.name)
            self._lock_wait[cpu] = lock
            yield ev
            self._check(cpu)
            del self._lock_wait[cpu]
            self.cpus.set_spinning(cpu, None)
            self.spinning_now -= 1
            self.metrics.spun(cpu, self.env.now - t0)
            if held_ctx is not None:
                ctx = held_ctx
                self.cpus.set_ctx(cpu, ctx)
        blocktime = self.metrics.blocktime
        stall0 = blocktime.item(cpu)  # Python floats: the same difference as of the numpy scalars
        if hold > 0:
            # ``yield from self._execute(cpu, ctx, hold, tc, rng)``, its first draw inline
            link = self.link
            assert link is not None
            t, q0 = _first_touch(link, tc, link.pages.mm, _draw_fns(rng)[0], self.env.now)
            if t >= hold:
                yield hold
                if cpu in self.claimed:
                    self._check(cpu)
            else:
                yield from self._execute_from(cpu, ctx, hold, t, q0, tc, rng)
        lock.release(cpu)
        self.metrics.segment(_VALUE[ctx], blocktime.item(cpu) - stall0, self.env.now - t_enter)

    def _rtas(self, cpu: int, base_s: float, tc: _Touch, rng: Draws) -> Proc:
        """rtas_call(): the global RTAS lock taken with raw_spin_lock_irqsave (a waiter spins
        soft-masked), then do_enter_rtas() hard-disables and enters firmware with MSR[EE]=0
        (arch/powerpc/kernel/rtas.c)."""
        yield from self._locked(cpu, self.locks[RTAS_LOCK], base_s, tc, rng, held_ctx=Ctx.IRQS_HARD_OFF)

"""A small discrete-event core in the manner of SimPy: an environment, events, processes.

Why not SimPy itself: we need a fixed, documented tie-breaking rule (time, then priority, then
scheduling order) and direct callbacks for the hot paths, and the whole core is ~200 lines.

* ``Environment`` owns the clock and a heap of ``(time, priority, seq, event)`` tuples.  ``seq``
  is a monotonically increasing counter, so two events at the same time and priority fire in the
  order they were scheduled: runs are deterministic whatever the hash seeds or the platform.
* ``Event`` is something that happens once; callbacks run when it is processed.
* ``Timeout`` is an event scheduled ``delay`` seconds from now.
* ``Process`` drives a generator that yields events; it resumes when the yielded event fires.
  A process is itself an event that fires when its generator returns.  A generator may also
  yield a plain ``float`` d >= 0: "resume me d seconds from now", exactly as ``yield
  Timeout(env, d)`` (same heap entry, same order) without creating the Timeout.

Hot paths (the exact mode processes millions of events): ``Timeout`` and ``call_at`` push their
heap entry directly instead of going through ``Event.succeed``; a ``Process`` keeps one bound
resume callback for its whole life, and one reusable wake-up event for the delays it yields as
floats; ``step``, ``run`` and ``run_bounded`` bind what they use to locals (``run_bounded``, the
runner's loop, inlines ``step``).  None of this changes which events exist or the order they fire
in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from heapq import heappop, heappush, heappushpop
from itertools import count
from typing import Any, Protocol, cast

NORMAL = 1
URGENT = 0

Callback = Callable[["Event"], None]


class Halting(Protocol):
    """What ``Environment.run_bounded`` stops on (the kernel model: ``dead`` after a panic)."""

    dead: bool


class SimulationError(RuntimeError):
    """An inconsistency inside the simulation (a bug, not bad input)."""


class Event:
    """Something that happens once at a simulated time; ``value`` is passed to waiters."""

    __slots__ = ("_scheduled", "callbacks", "env", "processed", "value")

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.callbacks: list[Callback] = []
        self.value: Any = None
        self._scheduled = False
        self.processed = False

    @property
    def triggered(self) -> bool:
        return self._scheduled

    def succeed(self, value: Any = None, delay: float = 0.0, priority: int = NORMAL) -> Event:
        if self._scheduled:
            raise SimulationError("event triggered twice")
        self.value = value
        self.env._schedule(self, delay, priority)
        return self

    def add_callback(self, cb: Callback) -> None:
        if self.processed:
            raise SimulationError("callback added to an event already processed")
        self.callbacks.append(cb)


class Timeout(Event):
    __slots__ = ()

    def __init__(self, env: Environment, delay: float, value: Any = None, priority: int = NORMAL) -> None:
        # ``not delay >= 0`` is True for negative delays and for NaN.
        if not delay >= 0:
            raise SimulationError(f"negative or NaN delay {delay!r}")
        self.env = env
        self.callbacks = []
        self.value = value
        self._scheduled = True
        self.processed = False
        heappush(env._heap, (env.now + delay, priority, next(env._counter), self))


def _run_call(ev: Event) -> None:
    ev._fn()  # type: ignore[attr-defined]


class _Call(Event):
    """An event whose first callback runs ``fn()`` (``Environment.call_at``)."""

    __slots__ = ("_fn",)

    def __init__(self, env: Environment, time: float, fn: Callable[[], None], priority: int) -> None:
        self.env = env
        self._fn = fn
        self.callbacks = [_run_call]
        self.value = None
        self._scheduled = True
        self.processed = False
        # ``now + (time - now)``, as ``succeed(delay=time - now)`` computes it: the same float.
        heappush(env._heap, (env.now + (time - env.now), priority, next(env._counter), self))


class Batch(Event):
    """Calls due at one time, each in its own place in the order (``Environment.call_at_batched``).

    Each call is given, when it is added, the sequence number ``call_at`` would have given it;
    the heap holds one entry for the batch, the key ``(at, NORMAL, seq)`` of its first call not
    run yet, the key that call's own entry would have.  Every other entry is the same, and a
    batch's calls are in key order, so the events fire in the same order as with one ``call_at``
    each; each call is one event (``events_processed``).  What it saves: the heap is smaller (the
    fluid guest's end looks: about six a time) and ``run_bounded`` runs the next call of a batch
    at once when it is still the first event, without an entry of its own.
    """

    __slots__ = ("at", "batches", "calls", "i")

    def __init__(self, env: Environment, at: float, batches: dict[float, Batch]) -> None:
        self.env = env
        self.callbacks = [_run_batch_call]
        self.value = None
        self._scheduled = True
        self.processed = False
        self.at = at
        self.batches = batches  # the owner's open batches by time (this one leaves when done)
        self.calls: list[tuple[int, Callable[[], None]]] = []
        self.i = 0  # the next call to run

    def _done(self) -> None:
        if self.batches.get(self.at) is self:
            del self.batches[self.at]


def _run_batch_call(ev: Event) -> None:
    """One call of a batch (``Environment.step``): the rest go back in the heap under the next key."""
    b = cast(Batch, ev)
    i = b.i
    b.i = i + 1
    b.calls[i][1]()
    if b.i < len(b.calls):
        heappush(b.env._heap, (b.at, NORMAL, b.calls[b.i][0], b))
    else:
        b._done()


class SideCalls:
    """Calls kept out of the event heap until they are the earliest of their own
    (``Environment.side``): for the many calls that wait long and mostly do nothing when they
    fire (the kernel model's re-settable alarms, ``kernel.timing.Alarm``, whose superseded
    entries stay planned; RCU's rescheduling pass planned at every grace period's start), which
    would otherwise deepen the heap every event goes through (~670 of ~750 entries in
    ``default-explicit`` exact).

    ``call_at(time, fn)`` is ``Environment.call_at(time, fn)``: the call gets the heap key
    ``(now + (time - now), NORMAL, order)`` that ``call_at`` would give it, its order taken at
    once, and is kept in a heap of its own; the earliest kept call is in the event heap under
    that key (a proxy entry), so the event heap pops every call at its key, in the same order
    as if each had been pushed, and each call is one event (``events_processed``), as before.
    Why the proxy popped is always the earliest kept call's: a kept call gets a proxy when it
    becomes the earliest kept (pushed, or the one before it ran), and a proxy's key is its
    call's, so of the kept calls' proxies the earliest call's pops first."""

    __slots__ = ("_env", "_in_heap", "_kept", "_proxy")

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._kept: list[tuple[float, int, Callable[[], None]]] = []  # (heap time, order, fn)
        self._in_heap: set[int] = set()  # the orders of the kept calls with a proxy in the heap
        # One event for every proxy entry (a heap entry is its key and this event: the key
        # tells them apart; ``processed`` is set at each pop and read by nobody)
        proxy = self._proxy = _Call.__new__(_Call)
        proxy.env = env
        proxy._fn = self._fire
        proxy.callbacks = [_run_call]
        proxy.value = None
        proxy._scheduled = True
        proxy.processed = False

    def __len__(self) -> int:
        return len(self._kept)

    def call_at(self, time: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` at absolute simulated ``time`` (>= now): ``Environment.call_at(time, fn)``."""
        env = self._env
        now = env.now
        if time < now:
            raise SimulationError(f"call_at in the past: {time} < {now}")
        entry = (now + (time - now), next(env._counter), fn)  # the key ``_Call`` pushes
        kept = self._kept
        heappush(kept, entry)
        if kept[0] is entry:
            self._in_heap.add(entry[1])
            heappush(env._heap, (entry[0], NORMAL, entry[1], self._proxy))

    def _fire(self) -> None:
        """A proxy popped: the earliest kept call is due; the next earliest gets its proxy
        (unless it has one) before the call runs."""
        kept = self._kept
        _t, order, fn = heappop(kept)
        in_heap = self._in_heap
        in_heap.discard(order)
        if kept:
            t, nxt, _fn = kept[0]
            if nxt not in in_heap:
                in_heap.add(nxt)
                heappush(self._env._heap, (t, NORMAL, nxt, self._proxy))
        fn()


ProcessGenerator = Generator[Event | float, Any, Any]


class _Wake(Event):
    """A process's wake-up from a delay it yielded (``Process._wake``): its one callback is the
    process's resume, which ``run_bounded`` runs inline (``Process._resume``'s float path)."""

    __slots__ = ("proc",)
    proc: Process


class Process(Event):
    """Runs a generator; each yielded event suspends it until that event is processed, each
    yielded float ``d`` for ``d`` seconds (as a ``Timeout`` of ``d`` would)."""

    __slots__ = ("_gen", "_heap", "_next", "_resume_cb", "_send", "_wake", "name")

    def __init__(self, env: Environment, gen: ProcessGenerator, name: str = "") -> None:
        super().__init__(env)
        self._gen = gen
        self.name = name
        # What every resume uses, bound once: the generator's ``send``, the heap and the order
        self._send = gen.send
        self._heap = env._heap
        self._next = env._counter.__next__
        self._resume_cb: Callback = self._resume
        # The wake-up of a yielded delay: one event for the process's life, in the heap at most
        # once (the process waits on one thing at a time); its value stays None, as a Timeout's.
        self._wake = _Wake(env)
        self._wake.proc = self
        self._wake.callbacks.append(self._resume_cb)
        self._wake._scheduled = True
        start = Event(env)
        start.callbacks.append(self._resume_cb)
        start.succeed(priority=URGENT)

    def _resume(self, ev: Event) -> None:
        try:
            nxt = self._send(ev.value)
        except StopIteration as stop:
            self.succeed(stop.value)
            return
        if isinstance(nxt, float):
            # ``yield d``: what ``Timeout(env, d)`` pushes, with the reusable wake-up event
            if not nxt >= 0:
                raise SimulationError(f"negative or NaN delay {nxt!r}")
            heappush(self._heap, (self.env.now + nxt, NORMAL, self._next(), self._wake))
            return
        self._wait(nxt)

    def _wait(self, nxt: Event) -> None:
        """Resume when ``nxt`` is processed (at once, in a new event, if it was already)."""
        if nxt.processed:
            # Already happened: resume at once (same time), keeping the order deterministic.
            again = Event(self.env)
            again.value = nxt.value
            again.callbacks.append(self._resume_cb)
            again.succeed(nxt.value, priority=URGENT)
        else:
            nxt.callbacks.append(self._resume_cb)


class Environment:
    """The clock and the event heap."""

    def __init__(self, initial_time: float = 0.0) -> None:
        self.now = float(initial_time)
        self._heap: list[tuple[float, int, int, Event]] = []
        # The same list, for a caller's look at its first entry on a hot path (``heap[0][0]``, the
        # time of the next event): read only.
        self.heap = self._heap
        self._counter = count(1)
        self.events_processed = 0
        # While ``run_bounded`` runs: its ``(stop, halt)``, for ``wake_inline``; the events it
        # processed inline.
        self._bound: tuple[list[float], Halting] | None = None
        self._inlined = 0
        # calls kept out of the heap until they are the earliest of their own (``SideCalls``)
        self.side = SideCalls(self)

    # -- scheduling -------------------------------------------------------------------------
    def _schedule(self, event: Event, delay: float, priority: int) -> None:
        event._scheduled = True
        heappush(self._heap, (self.now + delay, priority, next(self._counter), event))

    def event(self) -> Event:
        return Event(self)

    def timeout(self, delay: float, value: Any = None, priority: int = NORMAL) -> Timeout:
        return Timeout(self, delay, value, priority)

    def process(self, gen: ProcessGenerator, name: str = "") -> Process:
        return Process(self, gen, name)

    def call_at(self, time: float, fn: Callable[[], None], priority: int = NORMAL) -> Event:
        """Run ``fn`` at absolute simulated ``time`` (>= now)."""
        if time < self.now:
            raise SimulationError(f"call_at in the past: {time} < {self.now}")
        return _Call(self, time, fn, priority)

    def call_at_batched(self, time: float, fn: Callable[[], None], batches: dict[float, Batch]) -> None:
        """``call_at(time, fn)``, the call kept in the batch of ``batches`` due at the same time
        (``Batch``): the same events, in the same order."""
        now = self.now
        if time < now:
            raise SimulationError(f"call_at in the past: {time} < {now}")
        at = now + (time - now)  # as _Call computes it: the same float
        seq = next(self._counter)
        b = batches.get(at)
        if b is None:
            b = batches[at] = Batch(self, at, batches)
            heappush(self._heap, (at, NORMAL, seq, b))
        b.calls.append((seq, fn))

    def next_order(self) -> int:
        """Take the next number of the scheduling order, as an event scheduled now would."""
        return next(self._counter)

    def call_in_place(self, time: float, order: int, fn: Callable[[], None], priority: int = NORMAL) -> Event:
        """Run ``fn`` at heap key ``(time, priority, order)``: the time and place an event pushed
        earlier would have had, ``order`` taken then with ``next_order`` (``time`` the heap time
        itself, not recomputed).  Lets a caller keep events that cannot fire yet out of the heap
        and push each when it becomes the earliest of its own: the same events, the same order."""
        if time < self.now:
            raise SimulationError(f"call_in_place in the past: {time} < {self.now}")
        ev = _Call.__new__(_Call)
        ev.env = self
        ev._fn = fn
        ev.callbacks = [_run_call]
        ev.value = None
        ev._scheduled = True
        ev.processed = False
        heappush(self._heap, (time, priority, order, ev))
        return ev

    def wake_inline(self, t: float) -> bool:
        """For a process that would now yield the delay ``t - now`` from inside the callback of
        an event whose callbacks end with it (its own wake-up): if ``run_bounded`` runs and that
        wake-up, due at ``t``, would be the very next event it processes (every event in the heap
        due later, the run neither dead nor past its stop), process it here: the clock moves to
        ``t``, the event is counted, and True says "carry on, do not yield".  Else False and
        nothing changes.  The same events in the same order either way (the wake-up's place in
        the order is taken, as a push would take it)."""
        bound = self._bound
        if bound is None or not t >= self.now:  # (a negative or NaN delay raises when yielded)
            return False
        heap = self._heap
        if heap and heap[0][0] <= t:
            return False
        stop, halt = bound
        if halt.dead or t > stop[0]:
            return False
        next(self._counter)
        self.now = t
        self._inlined += 1
        return True

    def fire_inline(self, t: float, order: int) -> bool:
        """For the last callback of an event, about an event kept out of the heap at key ``(t,
        NORMAL, order)`` (``call_in_place``) that would do nothing when it fires but be counted:
        if ``run_bounded`` runs and that event would be the very next it processes (every event
        in the heap after it, the run neither dead nor past its stop), process it here: the clock
        moves to ``t``, the event is counted, True.  Else False and nothing changes."""
        bound = self._bound
        if bound is None or not t >= self.now:
            return False
        heap = self._heap
        if heap:
            h = heap[0]
            if h[0] < t or (h[0] == t and (h[1] < NORMAL or (h[1] == NORMAL and h[2] <= order))):
                return False
        stop, halt = bound
        if halt.dead or t > stop[0]:
            return False
        self.now = t
        self._inlined += 1
        return True

    # -- running ------------------------------------------------------------------------------
    def peek(self) -> float:
        return self._heap[0][0] if self._heap else math.inf

    def step(self) -> None:
        time, _prio, _seq, event = heappop(self._heap)
        if time < self.now:
            raise SimulationError(f"time went backwards: {time} < {self.now}")
        self.now = time
        # Callbacks cannot be added once ``processed`` is set, so the list is final here.
        event.processed = True
        self.events_processed += 1
        for cb in event.callbacks:
            cb(event)

    def run_bounded(
        self,
        stop: list[float],
        halt: Halting,
        progress: Callable[[], None] | None = None,
        every: int = 256,
    ) -> None:
        """Process events while ``halt.dead`` is false and the next one is due at or before
        ``stop[0]`` (both read before every event: callbacks may change them); ``progress()``
        after every ``every``-th event.  The same events in the same order as ``while not
        halt.dead and peek() <= stop[0]: step()``, with ``step`` inlined; ``events_processed``
        is brought up to date when it returns, the events a process ran inline
        (``wake_inline``) included (``progress`` does not see those)."""
        heap = self._heap
        tick = 0
        processed = self.events_processed
        inlined = self._inlined
        self._bound = (stop, halt)
        nxt_order = self._counter.__next__
        # The wake-up a process just planned (``Process._resume``'s push), pushed together with
        # the next pop (``heappushpop``: one sift instead of two, the same entries in the heap,
        # popped in the same order: the keys are unique); None when there is none.
        pend: tuple[float, int, int, Event] | None = None
        try:
            while True:
                if pend is not None:
                    if halt.dead:
                        break  # (the finally pushes it)
                    entry = heappushpop(heap, pend)
                    pend = None
                    if entry[0] > stop[0]:
                        heappush(heap, entry)
                        break
                    time, _prio, _seq, event = entry
                elif heap and not halt.dead and heap[0][0] <= stop[0]:
                    time, _prio, _seq, event = heappop(heap)
                else:
                    break
                if time < self.now:
                    raise SimulationError(f"time went backwards: {time} < {self.now}")
                self.now = time
                event.processed = True
                processed += 1
                if event.__class__ is _Wake:
                    # ``Process._resume(event)``, its one callback, inline: a wake-up's value is None
                    proc = event.proc
                    try:
                        nxt = proc._send(None)
                    except StopIteration as done:
                        proc.succeed(done.value)
                    else:
                        if isinstance(nxt, float):
                            if not nxt >= 0:
                                raise SimulationError(f"negative or NaN delay {nxt!r}")
                            pend = (self.now + nxt, NORMAL, nxt_order(), event)
                        else:
                            proc._wait(nxt)
                elif event.__class__ is Batch:
                    # its calls one after another while the next is still the first event (the
                    # loop's test for it: not dead, due by the stop time, before the heap's first)
                    b = event
                    calls = b.calls
                    # no process runs its wake-up inline meanwhile (wake_inline): the batch's
                    # later calls are out of the heap while one runs
                    self._bound = None
                    while True:
                        i = b.i
                        b.i = i + 1
                        calls[i][1]()
                        if progress is not None:
                            tick += 1
                            if tick % every == 0:
                                progress()
                        if b.i >= len(calls):
                            b._done()
                            break
                        key = (time, NORMAL, calls[b.i][0])
                        if halt.dead or time > stop[0] or (heap and heap[0] < key):
                            heappush(heap, (time, NORMAL, key[2], b))
                            break
                        processed += 1
                    self._bound = (stop, halt)
                    continue
                else:
                    for cb in event.callbacks:
                        cb(event)
                if progress is not None:
                    tick += 1
                    if tick % every == 0:
                        if pend is not None:
                            heappush(heap, pend)
                            pend = None
                        progress()
        finally:
            if pend is not None:
                heappush(heap, pend)
            self._bound = None
            self.events_processed = processed + self._inlined - inlined

    def run(self, until: float | Event | None = None) -> None:
        """Process events until the heap is empty, the time ``until`` is reached, or an event fires."""
        heap = self._heap
        step = self.step
        if isinstance(until, Event):
            stop = until
            while heap and not stop.processed:
                step()
            return
        limit = math.inf if until is None else float(until)
        while heap and heap[0][0] <= limit:
            step()
        if until is not None and limit > self.now and math.isfinite(limit):
            self.now = limit

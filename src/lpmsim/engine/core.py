"""A small discrete-event core in the manner of SimPy: an environment, events, processes.

Why not SimPy itself: we need a fixed, documented tie-breaking rule (time, then priority, then
scheduling order) and direct callbacks for the hot paths, and the whole core is ~150 lines.

* ``Environment`` owns the clock and a heap of ``(time, priority, seq, event)``.  ``seq`` is a
  monotonically increasing counter, so two events at the same time and priority fire in the order
  they were scheduled: runs are deterministic whatever the hash seeds or the platform.
* ``Event`` is something that happens once; callbacks run when it is processed.
* ``Timeout`` is an event scheduled ``delay`` seconds from now.
* ``Process`` drives a generator that yields events; it resumes when the yielded event fires.
  A process is itself an event that fires when its generator returns.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Generator
from typing import Any

NORMAL = 1
URGENT = 0

Callback = Callable[["Event"], None]


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
        if delay < 0 or math.isnan(delay):
            raise SimulationError(f"negative or NaN delay {delay!r}")
        super().__init__(env)
        self.succeed(value, delay, priority)


ProcessGenerator = Generator[Event, Any, Any]


class Process(Event):
    """Runs a generator; each yielded event suspends it until that event is processed."""

    __slots__ = ("_gen", "name")

    def __init__(self, env: Environment, gen: ProcessGenerator, name: str = "") -> None:
        super().__init__(env)
        self._gen = gen
        self.name = name
        start = Event(env)
        start.add_callback(self._resume)
        start.succeed(priority=URGENT)

    def _resume(self, ev: Event) -> None:
        try:
            nxt = self._gen.send(ev.value)
        except StopIteration as stop:
            self.succeed(stop.value)
            return
        if nxt.processed:
            # Already happened: resume at once (same time), keeping the order deterministic.
            again = Event(self.env)
            again.value = nxt.value
            again.add_callback(self._resume)
            again.succeed(nxt.value, priority=URGENT)
        else:
            nxt.add_callback(self._resume)


class Environment:
    """The clock and the event heap."""

    def __init__(self, initial_time: float = 0.0) -> None:
        self.now = float(initial_time)
        self._heap: list[tuple[float, int, int, Event]] = []
        self._seq = 0
        self.events_processed = 0

    # -- scheduling -------------------------------------------------------------------------
    def _schedule(self, event: Event, delay: float, priority: int) -> None:
        event._scheduled = True
        self._seq += 1
        heapq.heappush(self._heap, (self.now + delay, priority, self._seq, event))

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
        ev = Event(self)
        ev.add_callback(lambda _e: fn())
        ev.succeed(delay=time - self.now, priority=priority)
        return ev

    # -- running ------------------------------------------------------------------------------
    def peek(self) -> float:
        return self._heap[0][0] if self._heap else math.inf

    def step(self) -> None:
        time, _prio, _seq, event = heapq.heappop(self._heap)
        if time < self.now:
            raise SimulationError(f"time went backwards: {time} < {self.now}")
        self.now = time
        callbacks, event.callbacks = event.callbacks, []
        event.processed = True
        self.events_processed += 1
        for cb in callbacks:
            cb(event)

    def run(self, until: float | Event | None = None) -> None:
        """Process events until the heap is empty, the time ``until`` is reached, or an event fires."""
        if isinstance(until, Event):
            stop = until
            while self._heap and not stop.processed:
                self.step()
            return
        limit = math.inf if until is None else float(until)
        while self._heap and self._heap[0][0] <= limit:
            self.step()
        if until is not None and limit > self.now and math.isfinite(limit):
            self.now = limit

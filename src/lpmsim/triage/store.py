"""Compact storage of a log's events: a million events in about 80 MB instead of about 500 MB.

An :class:`EventStore` keeps one typed array per :class:`~lpmsim.triage.events.Event` field (strings
interned, CPU lists shared) and behaves as a read-only sequence of events: indexing or iterating builds
:class:`Event` objects on demand. Verdicts are stored per event; the reason text of a detector report is
not stored but rebuilt when the event is read (:attr:`EventStore.judge`, set by
:func:`lpmsim.triage.verdict.assign`), since for a million reports it would be most of the memory; the
verdict of a detector report is judged then too (one pass over the reports instead of two).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from lpmsim.triage.events import EVENT_TYPES, PHASE_NAMES, Event

VERDICTS: tuple[str, ...] = ("unknown", "consistent", "inconsistent", "phase")
LAZY = 255  # verdict code: judged when the event is read (see EventStore.judge)
_NONE_INT = -(2**63)
_NAN = math.nan


class _Interned:
    """Strings (or CPU tuples) by id; equal values share one id."""

    __slots__ = ("ids", "values")

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.values: list[Any] = []

    def id(self, value: Any) -> int:
        if value is None:
            return -1
        i = self.ids.get(value)
        if i is None:
            i = self.ids[value] = len(self.values)
            self.values.append(value)
        return i

    def get(self, i: int) -> Any:
        return None if i < 0 else self.values[i]


class EventStore(Sequence[Event]):
    """The events of one log, in file order, packed in arrays (see the module docstring)."""

    def __init__(self) -> None:
        self._type = bytearray()
        self._line = array("q")
        self._time = array("d")
        self._cpus = array("i")
        self._duration = array("d")
        self._task = array("i")
        self._phase = array("b")
        self._verdict = bytearray()
        self._variant = array("i")
        self._message = array("i")
        self._stack = array("i")
        self._stack_fn = array("i")
        self._detected_by = array("q")
        self._jiffies = array("q")
        self._migration = array("i")
        self._boot = array("i")
        self.cluster = bytearray()  # CPUs reported near each event (verdict.cluster_sizes), capped
        self._strings = _Interned()
        self._cpu_lists = _Interned()
        self._reasons: dict[int, str] = {}
        # (event, cluster size) -> (verdict, reason): set by verdict.assign for the events whose reason
        # (and, with verdict code LAZY, verdict) is built when they are read
        self.judge: Callable[[Event, int], tuple[str, str]] | None = None

    # -- writing ----------------------------------------------------------------------------------
    def append(self, ev: Event) -> None:
        s = self._strings.id
        self._type.append(EVENT_TYPES.index(ev.type))
        self._line.append(ev.line)
        self._time.append(_NAN if ev.time_s is None else ev.time_s)
        self._cpus.append(self._cpu_lists.id(None if ev.cpus is None else tuple(ev.cpus)))
        self._duration.append(_NAN if ev.duration_s is None else ev.duration_s)
        self._task.append(s(ev.task))
        self._phase.append(-1 if ev.phase is None else PHASE_NAMES.index(ev.phase))
        self._verdict.append(VERDICTS.index(ev.verdict))
        self._variant.append(s(ev.variant))
        self._message.append(s(ev.message))
        self._stack.append(s(ev.stack))
        self._stack_fn.append(s(ev.stack_fn))
        self._detected_by.append(_NONE_INT if ev.detected_by is None else ev.detected_by)
        self._jiffies.append(_NONE_INT if ev.jiffies is None else ev.jiffies)
        self._migration.append(ev.migration or 0)
        self._boot.append(ev.boot)
        self.cluster.append(0)
        if ev.reason:
            self._reasons[len(self._line) - 1] = ev.reason

    def set_verdict(self, i: int, verdict: str | None, reason: str | None = None) -> None:
        """Store the verdict of event ``i`` (None: :attr:`judge` gives it when the event is read) and
        ``reason`` when given (else :attr:`judge` builds it)."""
        self._verdict[i] = LAZY if verdict is None else VERDICTS.index(verdict)
        if reason is not None:
            self._reasons[i] = reason

    def set_phase(self, i: int, phase: str, migration: int) -> None:
        self._phase[i] = PHASE_NAMES.index(phase)
        self._migration[i] = migration

    # -- cheap column reads (no Event built) ------------------------------------------------------
    def type_of(self, i: int) -> str:
        return EVENT_TYPES[self._type[i]]

    def line_of(self, i: int) -> int:
        return self._line[i]

    def time_of(self, i: int) -> float:
        """The printk time of event ``i``, NaN when it has none."""
        return self._time[i]

    def cpus_of(self, i: int) -> tuple[int, ...]:
        c = self._cpu_lists.get(self._cpus[i])
        return () if c is None else c

    def migration_of(self, i: int) -> int:
        return self._migration[i]

    def boot_of(self, i: int) -> int:
        return self._boot[i]

    def phase_of(self, i: int) -> str | None:
        p = self._phase[i]
        return None if p < 0 else PHASE_NAMES[p]

    # -- reading ----------------------------------------------------------------------------------
    def event(self, i: int, with_reason: bool = True) -> Event:
        """Event ``i`` as an object (a copy: changing it does not change the store)."""
        g = self._strings.get
        cpus = self._cpu_lists.get(self._cpus[i])
        t, d = self._time[i], self._duration[i]
        p, db, jf = self._phase[i], self._detected_by[i], self._jiffies[i]
        ev = Event(
            type=EVENT_TYPES[self._type[i]],  # type: ignore[arg-type]
            line=self._line[i],
            time_s=None if t != t else t,
            cpus=None if cpus is None else list(cpus),
            duration_s=None if d != d else d,
            task=g(self._task[i]),
            phase=None if p < 0 else PHASE_NAMES[p],  # type: ignore[arg-type]
            verdict="unknown" if self._verdict[i] == LAZY else VERDICTS[self._verdict[i]],  # type: ignore[arg-type]
            variant=g(self._variant[i]),
            detected_by=None if db == _NONE_INT else db,
            message=g(self._message[i]),
            jiffies=None if jf == _NONE_INT else jf,
            migration=self._migration[i] or None,
            stack=g(self._stack[i]),
            stack_fn=g(self._stack_fn[i]),
            boot=self._boot[i],
        )
        reason = self._reasons.get(i)
        if reason is not None:
            ev.reason = reason
        lazy = self._verdict[i] == LAZY
        if self.judge is not None and (lazy or (with_reason and reason is None)):
            verdict, text = self.judge(ev, self.cluster[i])
            if lazy:
                ev.verdict = verdict  # type: ignore[assignment]
            if with_reason and reason is None:
                ev.reason = text
        return ev

    def __len__(self) -> int:
        return len(self._line)

    @overload
    def __getitem__(self, i: int) -> Event: ...

    @overload
    def __getitem__(self, i: slice) -> list[Event]: ...

    def __getitem__(self, i: int | slice) -> Event | list[Event]:
        if isinstance(i, slice):
            return [self.event(k) for k in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("event index out of range")
        return self.event(i)

    def __iter__(self) -> Iterator[Event]:
        for i in range(len(self)):
            yield self.event(i)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EventStore({len(self)} events)"

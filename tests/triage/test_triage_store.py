"""The compact event store and the linear-time verdict pass give what the direct definitions give."""

from __future__ import annotations

import math
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from lpmsim.triage import triage_text
from lpmsim.triage.events import Event
from lpmsim.triage.store import EventStore
from lpmsim.triage.verdict import CLUSTER_CAP, CLUSTER_LINES, CLUSTER_S, cluster_sizes


def _brute(evs: list[Event]) -> list[int]:
    """The definition, in quadratic time (the pre-issue-15 ``_cluster_cpus``)."""
    out = []
    for ev in evs:
        cpus: set[int] = set()
        for other in evs:
            if (other.migration, other.boot) != (ev.migration, ev.boot):
                continue
            if ev.time_s is not None and other.time_s is not None:
                near = abs(other.time_s - ev.time_s) <= CLUSTER_S
            else:
                near = abs(other.line - ev.line) <= CLUSTER_LINES
            if near and other.cpus:
                cpus.update(other.cpus)
        out.append(min(len(cpus), CLUSTER_CAP))
    return out


_event = st.builds(
    Event,
    type=st.just("softlockup"),
    line=st.integers(1, 2000),
    time_s=st.one_of(st.none(), st.floats(0, 600, allow_nan=False)),
    cpus=st.one_of(st.none(), st.lists(st.integers(0, 6), max_size=4)),
    migration=st.sampled_from([None, 1, 2]),
    boot=st.integers(0, 1),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=60))
def test_linear_cluster_sizes_equal_the_definition(evs: list[Event]) -> None:
    evs.sort(key=lambda e: e.line)
    store = EventStore()
    for e in evs:
        store.append(e)
    cluster_sizes(store, array("q", range(len(evs))))
    assert list(store.cluster) == _brute(evs)


def test_store_round_trip_and_sequence_behaviour() -> None:
    ev = Event(
        type="hardlockup",
        line=7,
        time_s=1.5,
        cpus=[1, 2],
        duration_s=None,
        task="a b:[/x]:3",
        phase="transfer",
        verdict="consistent",
        reason="r",
        variant="ppc_other",
        detected_by=0,
        message="m",
        jiffies=None,
        migration=2,
        stack="lock",
        stack_fn="f",
        boot=1,
    )
    store = EventStore()
    store.append(ev)
    store.append(Event(type="panic", line=9))
    assert store[0] == ev and store[-1].line == 9 and len(store) == 2
    assert store == [ev, Event(type="panic", line=9)] and store[1:] == [Event(type="panic", line=9)]
    assert math.isnan(store.time_of(1)) and store.cpus_of(0) == (1, 2)
    store[0].cpus.append(5)  # type: ignore[union-attr]  # a copy: the store does not change
    assert store[0].cpus == [1, 2]


def test_reasons_are_rebuilt_on_read() -> None:
    log = "".join(
        f"[ {10 + i}.0] watchdog: BUG: soft lockup - CPU#{i} stuck for 22s! [a:{i}]\n" for i in range(4)
    )
    tri = triage_text(log)
    assert len(tri.events) == 4 and all(e.reason.startswith("no migration in the log") for e in tri.events)
    assert all("3 or more CPUs reported within 60 s" in e.reason for e in tri.events)

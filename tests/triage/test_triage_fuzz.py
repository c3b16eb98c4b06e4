"""Any bytes, any mutation of a real log: triage never raises and its output stays well-formed."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpmsim.triage.analyze import triage_blocks, triage_file
from lpmsim.triage.events import EVENT_TYPES, JSON_EVENT_KEYS, PHASE_NAMES, Triage
from lpmsim.triage.report import to_json

DATA = Path(__file__).resolve().parents[1] / "data" / "triage"
CORPUS = [p.read_bytes() for p in sorted(DATA.glob("*.log")) + sorted(DATA.glob("*/*.log"))]
# lines that start events or phases, to splice into random data
SNIPPETS = [
    b"watchdog: CPU 1 detected hard LOCKUP on other CPUs 0-3,7",
    b"watchdog: CPU 2 TB:123, last SMP heartbeat TB:1 (15999ms ago)",
    b"Watchdog CPU:4 detected Hard LOCKUP other CPUS:8-9",
    b"BUG: soft lockup - CPU#99999999999999999999 stuck for 99999999999999999999s! [a:b:c:1]",
    b"rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
    b"\t3-...!: (0 ticks this GP) idle=1",
    b"(detected by 0, t=99999999999999999999999 jiffies",
    b"INFO: rcu_sched detected expedited stalls on CPUs/tasks: { 1-... 2-... P7 } 5 jiffies",
    b"BUG: workqueue lockup - pool cpus=0-4294967296 flags=0x4 nice=0 stuck for 3s!",
    b"INFO: task :1 blocked for more than 1 seconds.",
    b"Kernel panic - not syncing: ",
    b"Oops: Unrecoverable System Reset, sig: 6 [#1]",
    b"mobility: calling ibm,suspend-me on CPU 3",
    b"mobility: CPU 3 waking all threads",
    b"mobility: memory transfer completed.",
    b"watchdog: Set the NMI watchdog timeout factor to 99999999999999999999%",
    b"lpmsim-guard: restored (phase post)",
    b"CPU 5 didn't respond to backtrace IPI, inspecting paca.",
    b"NMI backtrace for cpu 7",
    b"[   12.000000][  C999] ",
    b"<4>",
    b"\r",
    b"\x00",
    b"\xff\xfe",
]


def _check(tri: Triage) -> None:
    lines = [e.line for e in tri.events]
    assert lines == sorted(lines)
    assert all(1 <= n <= max(tri.lines, 1) for n in lines)
    assert all(e.type in EVENT_TYPES for e in tri.events)
    assert all(e.phase is None or e.phase in PHASE_NAMES for e in tri.events)
    obj = json.loads(to_json([tri]))
    assert set(obj) == {"events", "phases"}
    assert all(tuple(ev) == JSON_EVENT_KEYS for ev in obj["events"])


def _run_bytes(data: bytes) -> Triage:
    with tempfile.NamedTemporaryFile(suffix=".log") as fh:
        fh.write(data)
        fh.flush()
        return triage_file(fh.name, block_size=4096)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=20_000))
def test_random_bytes(data: bytes) -> None:
    _check(_run_bytes(data))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(SNIPPETS), st.binary(max_size=40)), max_size=60),
    st.sampled_from([b"\n", b"\r\n", b" "]),
)
def test_spliced_snippets(parts: list[bytes], sep: bytes) -> None:
    _check(_run_bytes(sep.join(parts)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(CORPUS))),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), st.binary(max_size=30)), min_size=1, max_size=25),
)
def test_mutated_corpus(index: int, edits: list[tuple[float, int, bytes]]) -> None:
    data = bytearray(CORPUS[index])
    for where, op, payload in edits:
        pos = int(where * len(data))
        if op == 0:
            data[pos:pos] = payload  # insert
        elif op == 1:
            del data[pos : pos + len(payload) + 1]  # delete
        elif op == 2:
            data[pos : pos + len(payload)] = payload  # overwrite
        else:
            data[pos:pos] = SNIPPETS[len(payload) % len(SNIPPETS)] + b"\n"
    _check(_run_bytes(bytes(data)))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=3000))
def test_random_text_blocks(text: str) -> None:
    data = text.encode("utf-8", errors="surrogatepass").replace(b"\x00", b"") + b"\n"
    _check(triage_blocks([data]))

"""Logs as people paste them (issue 15): wrapped, quoted, whitespace-mangled, CR line ends, several
boots, truncated archives. Every labelled log (tests/data/triage/**/INDEX.toml) is the ground truth:
damaging it the way a mail client or a terminal does must lose no event and invent none."""

from __future__ import annotations

import gzip
import lzma
import random
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from triage_helpers import all_labelled

from lpmsim.triage import triage_file, triage_text
from lpmsim.triage.analyze import triage_blocks
from lpmsim.triage.events import Event, Triage
from lpmsim.triage.reader import ReadStatus, iter_blocks
from lpmsim.triage.stitch import completes, continuation, cut_short

LABELLED = all_labelled()
LOGS = [Path(p).read_text(encoding="utf-8", errors="replace") for p, _ in LABELLED]
HEADLINE_TYPES = ("softlockup", "hardlockup", "hung_task", "rcu_stall", "panic", "workqueue_lockup")


def _triage_lines(lines: list[str]) -> Triage:
    return triage_blocks(["".join(line + "\n" for line in lines).encode("utf-8", "replace")])


def wrap(text: str, width: int, quote: str = "") -> tuple[list[str], list[int]]:
    """Wrap every line at ``width`` columns between words, as a mail client does (a word longer than the
    width stays whole), each physical line prefixed with ``quote``. Returns the lines and, for each, the
    1-based number of the original line it came from."""
    out: list[str] = []
    origin: list[int] = []
    for n, line in enumerate(text.split("\n")[:-1], start=1):
        words = line.split(" ")
        cur = words[0]
        for w in words[1:]:
            if len(quote) + len(cur) + 1 + len(w) > width and cur.strip():
                out.append(quote + cur)
                origin.append(n)
                cur = w
            else:
                cur += " " + w
        out.append(quote + cur)
        origin.append(n)
    return out, origin


def _key(ev: Event, line: int) -> tuple[object, ...]:
    cpus = ev.cpus if ev.type in ("softlockup", "hardlockup") else None
    return (line, ev.type, cpus)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(LOGS))),
    st.integers(60, 100),
    st.sampled_from(["", "> ", "> > ", ">> "]),
    st.booleans(),
)
def test_wrapping_loses_no_event(index: int, width: int, quote: str, crlf: bool) -> None:
    """Property (issue 15): a labelled log wrapped at 60-100 columns, quoted or not, with CRLF or not,
    triages to the same events (type, announcing line mapped back, CPUs of lockups) as the original."""
    text = LOGS[index]
    want = [_key(e, e.line) for e in triage_text(text).events if e.type in HEADLINE_TYPES]
    lines, origin = wrap(text, width, quote)
    if crlf:
        lines = [line + "\r" for line in lines]
    got = [_key(e, origin[e.line - 1]) for e in _triage_lines(lines).events if e.type in HEADLINE_TYPES]
    assert got == want


_GARBAGE_WORDS = [
    "INFO:",
    "BUG:",
    "watchdog:",
    "rcu:",
    "soft",
    "lockup",
    "Kernel",
    "CPU",
    "3",
    "stuck",
    "for",
]
_GARBAGE_WORDS += ["[ 12.5]", ">", "\t", "blocked", "stall", "LOCKUP", "NMI", "@", "(10240ms", "ago)", "x:1"]


@st.composite
def _garbage_line(draw: st.DrawFn) -> str:
    words = draw(
        st.lists(st.one_of(st.sampled_from(_GARBAGE_WORDS), st.text("abcxyz019 .,:-_/", max_size=8)))
    )
    return " ".join(words)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(LOGS))), st.lists(st.tuples(st.floats(0, 1), _garbage_line()), max_size=40))
def test_garbage_invents_no_event(index: int, inserts: list[tuple[float, str]]) -> None:
    """Fuzz (issue 15): lines of garbage (message heads, fragments, prefixes) mixed into a labelled log
    add no event: every event found is one of the clean log's, on the same line."""
    lines = LOGS[index].split("\n")[:-1]
    want = {(e.line, e.type) for e in triage_text(LOGS[index]).events}
    mixed: list[str] = []
    origin: list[int] = []
    spots = sorted((int(f * (len(lines) + 1)), g) for f, g in inserts)
    k = 0
    for n, line in enumerate(lines, start=1):
        while k < len(spots) and spots[k][0] < n:
            mixed.append(spots[k][1])
            origin.append(0)  # a garbage line: no event may be placed on it
            k += 1
        mixed.append(line)
        origin.append(n)
    got = {(origin[e.line - 1], e.type) for e in _triage_lines(mixed).events}
    assert got <= want


# -- recognition classes, one real-world shape each ------------------------------------------------
def test_issue_examples_of_wrapped_messages() -> None:
    log = (
        "[ 611.52] watchdog: CPU 7 self-detected hard LOCKUP @\n"
        "_raw_spin_lock+0x40/0x90\n"
        "[ 612.00] rcu: INFO: rcu_sched self-detected\n"
        "stall on CPU\n"
        "[ 612.01] rcu: \t7-....: (5249 ticks this GP) idle=1\n"
        "[ 620.00] watchdog: CPU 9 detected hard LOCKUP on other CPUs 7\n"
        "[ 620.00] watchdog: CPU 9 TB:1000, last SMP heartbeat TB:500\n"
        "(10240ms ago)\n"
    )
    evs = triage_text(log).events
    assert [(e.line, e.type, e.cpus) for e in evs] == [
        (1, "hardlockup", [7]),
        (3, "rcu_stall", [7]),
        (6, "hardlockup", [7]),
    ]
    assert evs[0].stack_fn == "_raw_spin_lock" and evs[2].duration_s == pytest.approx(10.24)


def test_mangled_whitespace_quotes_tabs_and_prefixes() -> None:
    log = (
        "> >> Sep 28 15:40:01 host kernel: [  611.52][    C0] INFO: taskkworker/3:1:123  blocked for more"
        " than 120 seconds.\r\n"
        "\t[  612.000000]  watchdog:  BUG: soft lockup - CPU#3 stuck for 22s!   [kworker/3:1:77]\r\n"
        ">\tKernel panic - not syncing: softlockup: hung\n"
        "> tasks\n"
    )
    evs = triage_text(log).events
    assert [(e.line, e.type, e.task, e.time_s) for e in evs] == [
        (1, "hung_task", "kworker/3:1:123", 611.52),
        (2, "softlockup", "kworker/3:1:77", 612.0),
        (3, "panic", None, None),
    ]
    assert evs[2].message == "softlockup: hung tasks"


def test_no_false_joins() -> None:
    """A line that has its own log prefix never continues the one before, and a line is joined only
    when the one before ends in a known message cut short."""
    log = (
        "[ 1.0] watchdog: CPU 7 self-detected hard LOCKUP @\n"
        "[ 1.1] _raw_spin_lock+0x40/0x90\n"  # own prefix: not a continuation
        "[ 2.0] some driver said INFO:\n"
        "task list follows: kworker:1 blocked\n"  # does not complete a known message
        "[ 3.0] rcu: INFO:\n"
        "rcu_sched self-detected stall on CPU\n"  # completes one: joined
    )
    assert continuation("[ 1.1] x") is None and continuation("> > x  y") == "x y"
    assert cut_short("watchdog: CPU 7 self-detected hard LOCKUP @")
    assert not cut_short("watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [a:1]")
    assert not completes("rcu: INFO: rcu_sched", "rcu: INFO: rcu_sched hello")
    evs = triage_text(log).events
    assert [(e.line, e.type, e.time_s) for e in evs] == [(5, "rcu_stall", 3.0)]


def test_cr_only_line_ends(tmp_path: Path) -> None:
    p = tmp_path / "serial.log"
    p.write_bytes(b"[ 1.0] boot\r[ 2.0] watchdog: BUG: soft lockup - CPU#1 stuck for 23s! [a:9]\r[ 3.0] x\r")
    tri = triage_file(str(p))
    assert tri.lines == 3 and [(e.line, e.type) for e in tri.events] == [(2, "softlockup")]


def test_restarting_timestamps_are_separate_boots() -> None:
    """Two boots in one file: reports at the same printk times in different boots are not one cluster."""
    boot = "".join(
        f"[ 100.{i}] watchdog: BUG: soft lockup - CPU#{i} stuck for 22s! [a:{i}]\n" for i in range(2)
    )
    two = triage_text(boot + "[ 0.000000] Linux version 6.1.0 (x)\n" + boot.replace("CPU#0", "CPU#5"))
    assert [e.boot for e in two.events] == [0, 0, 1, 1]
    assert all("3 or more CPUs" not in e.reason for e in two.events)
    one = triage_text(boot + boot.replace("CPU#0", "CPU#5").replace("[ 100.", "[ 101."))
    assert all("3 or more CPUs" in e.reason for e in one.events)
    back = triage_text(boot + boot.replace("[ 100.", "[ 3."))  # the clock went back without a banner
    assert [e.boot for e in back.events] == [0, 0, 1, 1]


# -- truncated archives ----------------------------------------------------------------------------
def _big_log() -> bytes:
    rng = random.Random(7)
    out = []
    for i in range(60_000):
        if i % 500 == 250:
            out.append(
                f"[{i * 0.01:12.6f}] watchdog: BUG: soft lockup - CPU#{i % 8} stuck for 22s! [a:{i}]\n"
            )
        else:
            out.append(f"[{i * 0.01:12.6f}] eth0: noise {rng.random():.6f} {'x' * rng.randrange(60)}\n")
    return "".join(out).encode()


@pytest.mark.parametrize("kind", ["gz", "xz"])
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_archive_is_read_up_to_the_damage(tmp_path: Path, kind: str, keep: float) -> None:
    data = _big_log()
    packed = gzip.compress(data) if kind == "gz" else lzma.compress(data)
    p = tmp_path / f"cut.log.{kind}"
    p.write_bytes(packed[: int(len(packed) * keep)])
    # what zcat/xzcat recover: everything the decompressor yields before the cut
    d = zlib.decompressobj(wbits=31) if kind == "gz" else lzma.LZMADecompressor()
    recovered = d.decompress(packed[: int(len(packed) * keep)])
    status = ReadStatus()
    text = b"".join(iter_blocks(str(p), status, block_size=1 << 16))
    assert len(text) >= len(recovered) > 0.3 * keep * len(data)
    assert data.startswith(text[: len(recovered)])
    assert any("ends early" in w for w in status.warnings)
    tri = triage_file(str(p))
    full = triage_text(data.decode())
    n = len(tri.events)
    assert n >= len(recovered) // len(data) and n > 0
    assert [(e.line, e.cpus) for e in tri.events] == [(e.line, e.cpus) for e in full.events[:n]]
    assert any("read the" in w for w in tri.warnings)


def test_damaged_archive_middle_and_trailing_garbage(tmp_path: Path) -> None:
    data = _big_log()
    packed = bytearray(gzip.compress(data))
    packed[len(packed) // 2 : len(packed) // 2 + 64] = b"\x00" * 64
    p = tmp_path / "bad.gz"
    p.write_bytes(bytes(packed))
    tri = triage_file(str(p))
    assert tri.events and any("damaged" in w or "ends early" in w for w in tri.warnings)
    for name, pack in (("two.gz", gzip.compress), ("two.xz", lzma.compress)):
        q = tmp_path / name
        q.write_bytes(pack(data[:100_000]) + pack(data[100_000:]) + b"\x00" * 8)  # members + padding
        for block in (1024, 1 << 16):
            status = ReadStatus()
            assert b"".join(iter_blocks(str(q), status, block_size=block)) == data
            assert status.warnings == []
        q.write_bytes(pack(data) + b"junk")
        tri = triage_file(str(q))
        assert tri.lines == data.count(b"\n") and any("trailing garbage" in w for w in tri.warnings)


@pytest.mark.parametrize("block", [97, 4096])
def test_wrapped_messages_across_block_boundaries(tmp_path: Path, block: int) -> None:
    """A message cut short on the last line of a block is joined with the first lines of the next one:
    wrapped logs read in tiny blocks give the events they give in one block. (The stack and task of a
    report are read from the lines after it within its block, so they are not compared here.)"""
    for index in range(0, len(LOGS), 3):
        lines, _ = wrap(LOGS[index], 60, "> ")
        p = tmp_path / f"{index}.log"
        p.write_text("".join(line + "\n" for line in lines))
        whole = [_key(e, e.line) for e in _triage_lines(lines).events]
        small = [_key(e, e.line) for e in triage_file(str(p), block_size=block).events]
        assert small == whole, LABELLED[index][0]

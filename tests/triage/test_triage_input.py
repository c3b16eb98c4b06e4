"""Input handling: prefixes, compression, stdin, noise, long lines, bounded memory, speed."""

from __future__ import annotations

import gzip
import lzma
import time
from pathlib import Path

import pytest

from lpmsim.triage import triage_file, triage_text
from lpmsim.triage.prefix import split_prefix
from lpmsim.triage.reader import LogOpenError, ReadStatus, iter_blocks
from lpmsim.triage.scanner import parse_cpulist

DATA = Path(__file__).resolve().parents[1] / "data" / "triage"
SOFT = "watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [kworker/3:1:77]"


@pytest.mark.parametrize(
    ("line", "time_s", "text"),
    [
        ("[  80.207155] " + SOFT, 80.207155, SOFT),
        ("[69244.027433][   C24] " + SOFT, 69244.027433, SOFT),
        ("[   12.5][  T123] " + SOFT, 12.5, SOFT),
        ("<4>[ 1401585.395821] " + SOFT, 1401585.395821, SOFT),
        ("Dec 21 13:26:30 hydra kernel: " + SOFT, None, SOFT),
        ("Dec  1 03:04:05 hydra kernel: [ 9.000001] " + SOFT, 9.000001, SOFT),
        ("2019-04-24T11:34:00.514575+02:00 jowisz kernel: [  752.907614] " + SOFT, 752.907614, SOFT),
        ("kernel: " + SOFT, None, SOFT),
        ("[Wed Mar 30 15:21:35 2022] " + SOFT, None, SOFT),
        ("4,16627,40311380557,-,caller=C0;" + SOFT, 40311.380557, SOFT),
        (SOFT, None, SOFT),
    ],
)
def test_prefixes(line: str, time_s: float | None, text: str) -> None:
    p = split_prefix(line)
    assert p.text == text
    assert p.time_s == (None if time_s is None else pytest.approx(time_s))
    ev = triage_text(line + "\n").events[0]
    assert ev.cpus == [3] and ev.task == "kworker/3:1:77" and ev.duration_s == 22
    assert ev.time_s == (None if time_s is None else pytest.approx(time_s))


def test_cpulist() -> None:
    assert parse_cpulist("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpulist("") == []
    assert parse_cpulist("5-2,x,99999999999999") == []


def test_not_events() -> None:
    log = "\n".join(
        [
            "Built 1 zonelists, mobility grouping on.  Total pages: 491040",
            "---[ end Kernel panic - not syncing: Hard LOCKUP ]---",
            "watchdog: CPU 4 became unstuck TB:12345",
            "Watchdog CPU:4 became unstuck",
            '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
            "NMI watchdog: Enabled. Permanently consumes one hw-PMU counter.",
            "[drm] panic handler registered",
        ]
    )
    assert triage_text(log).events == []


def test_panic_is_not_a_hardlockup() -> None:
    tri = triage_text("Kernel panic - not syncing: Watchdog detected hard LOCKUP on cpu 3\n")
    assert [(e.type, e.message) for e in tri.events] == [("panic", "Watchdog detected hard LOCKUP on cpu 3")]


def test_hung_task_variants() -> None:
    tri = triage_text(
        "INFO: task kworker/u16:2:123 blocked for more than 122 seconds.\n"
        "INFO: task fio:99 blocked in I/O wait for more than 480 seconds.\n"
    )
    assert [(e.task, e.duration_s) for e in tri.events] == [("kworker/u16:2:123", 122), ("fio:99", 480)]


def test_generic_buddy_and_booke_hardlockup() -> None:
    tri = triage_text(
        "watchdog: CPU4: Watchdog detected hard LOCKUP on cpu 5\n"
        "BookE Watchdog detected hard LOCKUP on cpu 1\n"
        "NMI watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [a:1]\n"
        "BUG: soft lockup detected on CPU#2!\n"
    )
    got = [(e.type, e.variant, e.cpus, e.detected_by) for e in tri.events]
    assert got == [
        ("hardlockup", "generic", [5], 4),
        ("hardlockup", "vendor_booke", [1], None),
        ("softlockup", "nmi_watchdog_prefix", [0], None),
        ("softlockup", "old", [2], None),
    ]


def test_standalone_nmi_backtrace_is_an_event() -> None:
    tri = triage_text(
        "sysrq: Show backtrace of all active CPUs\nNMI backtrace for cpu 3\nCPU: 3 PID: 1 Comm: x\n"
    )
    assert [(e.type, e.cpus) for e in tri.events] == [("nmi_backtrace", [3])]


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_gzip_xz_and_plain_agree(tmp_path: Path) -> None:
    raw = (DATA / "048.log").read_bytes()
    plain = triage_file(_write(tmp_path / "a.log", raw))
    gz = triage_file(_write(tmp_path / "a.log.gz", gzip.compress(raw)))
    xz = triage_file(_write(tmp_path / "weird-name", lzma.compress(raw)))
    key = [(e.line, e.type, e.cpus) for e in plain.events]
    assert len(key) == 17
    assert [(e.line, e.type, e.cpus) for e in gz.events] == key
    assert [(e.line, e.type, e.cpus) for e in xz.events] == key


def test_truncated_gzip_warns_and_keeps_what_was_read(tmp_path: Path) -> None:
    raw = (DATA / "048.log").read_bytes()
    data = gzip.compress(raw)
    tri = triage_file(_write(tmp_path / "t.gz", data[: len(data) // 2]))
    assert tri.warnings and "ends early" in tri.warnings[0]


def test_crlf_nul_and_noise(tmp_path: Path) -> None:
    line = ("[  80.207155] " + SOFT).encode()
    data = b"\x00\xff\xfe garbage \x1b[0;32m OK\r\n" + line + b"\r\n" + b"\x00".join([b""] * 3) + b"\n"
    tri = triage_file(_write(tmp_path / "n.log", data))
    assert [(e.line, e.type) for e in tri.events] == [(2, "softlockup")]


def test_utf16_text(tmp_path: Path) -> None:
    data = ("boot\n" + SOFT + "\n").encode("utf-16-le")
    tri = triage_file(_write(tmp_path / "u.log", data))
    assert [(e.line, e.cpus) for e in tri.events] == [(2, [3])]


def test_over_long_line_is_truncated(tmp_path: Path) -> None:
    data = b"x" * 3_000_000 + b"\n" + SOFT.encode() + b"\n" + b"y" * 2_500_000
    status = ReadStatus()
    blocks = list(iter_blocks(_write(tmp_path / "l.log", data), status, block_size=1 << 16))
    assert max(len(b) for b in blocks) < (1 << 16) + 20_000
    assert status.truncated_lines == 2
    tri = triage_file(str(tmp_path / "l.log"))
    assert [(e.line, e.type) for e in tri.events] == [(2, "softlockup")]


def test_event_across_block_boundary(tmp_path: Path) -> None:
    body = "".join(f"[{i:6d}.000000] filler line {i}\n" for i in range(5000))
    log = body + "[ 9999.000000] " + SOFT + "\n" + body
    path = _write(tmp_path / "b.log", log.encode())
    for bs in (4096, 65536, 1 << 20):
        tri = triage_file(path, block_size=bs)
        assert [(e.line, e.time_s) for e in tri.events] == [(5001, 9999.0)]
        assert tri.lines == 10001


def test_since_until(tmp_path: Path) -> None:
    log = "".join(f"[{t}.000000] INFO: task a:{t} blocked for more than 120 seconds.\n" for t in (10, 20, 30))
    path = _write(tmp_path / "s.log", log.encode())
    assert [e.time_s for e in triage_file(path, since=15, until=25).events] == [20.0]
    assert [e.time_s for e in triage_file(path, since=15).events] == [20.0, 30.0]


def test_missing_file() -> None:
    with pytest.raises(LogOpenError):
        list(iter_blocks("/nonexistent/x.log"))


def test_multi_mb_log_is_fast(tmp_path: Path) -> None:
    noise = "".join(
        f"[{i:6d}.123456] EXT4-fs (sda{i % 7}): mounted filesystem, opts: none {i}\n" for i in range(2000)
    )
    chunk = noise + "[ 9999.000000] " + SOFT + "\n"
    path = tmp_path / "big.log"
    with path.open("w") as fh:
        for _ in range(60):
            fh.write(chunk)
    size = path.stat().st_size
    assert size > 8_000_000
    t0 = time.perf_counter()
    tri = triage_file(str(path))
    dt = time.perf_counter() - t0
    assert len(tri.events) == 60
    assert tri.lines == 60 * 2001
    assert dt < 4.0, f"{size / dt / 1e6:.1f} MB/s"


def test_event_cap_keeps_memory_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from lpmsim.triage import scanner

    monkeypatch.setattr(scanner, "MAX_EVENTS", 3)
    tri = triage_text("".join(f"INFO: task a:{i} blocked for more than 120 seconds.\n" for i in range(10)))
    assert len(tri.events) == 3
    assert tri.warnings == ["more than 3 events: 7 later ones are not listed"]

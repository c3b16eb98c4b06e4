"""Triage one log: read it as a stream, scan it, place events in phases, judge them."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from lpmsim.triage import verdict
from lpmsim.triage.events import Triage
from lpmsim.triage.prefix import first_timestamp, last_timestamp
from lpmsim.triage.reader import BLOCK_SIZE, ReadStatus, iter_blocks
from lpmsim.triage.scanner import Scanner

Progress = Callable[[int, int | None, int], None]  # (bytes read, total bytes or None, events so far)


def triage_blocks(
    blocks: Iterable[bytes], source: str = "<text>", on_block: Callable[[int], None] | None = None
) -> Triage:
    """Triage an iterable of byte blocks (each made of whole lines); ``on_block(events)`` after each."""
    sc = Scanner()
    tri = Triage(source=source)
    lines = 0
    for block in blocks:
        if tri.first_time_s is None and lines < 400:
            tri.first_time_s = first_timestamp(block)
        t = last_timestamp(block)
        if t is not None:
            tri.last_time_s = t
        lines += sc.feed(block, lines)
        if on_block is not None:
            on_block(len(sc.events))
    sc.finish()
    tri.lines = lines
    tri.events = sc.events
    tri.kdump_lines = sc.kdump_lines
    if sc.dropped_events:
        tri.warnings.append(
            f"more than {len(sc.events)} events: {sc.dropped_events} later ones are not listed"
        )
    if sc.tracker.migration:
        store = sc.events
        for i in range(len(store)):
            if store.phase_of(i) is None:
                store.set_phase(i, "before_suspend", 1)
    tri.phases = sc.tracker.build(lines, tri.first_time_s, tri.last_time_s)
    verdict.assign(tri)
    return tri


def triage_text(text: str, source: str = "<text>") -> Triage:
    """Triage a log held in a string (tests, the Python API)."""
    if text and not text.endswith("\n"):
        text += "\n"
    data = text.encode("utf-8", errors="replace")
    return triage_blocks([data.translate(None, b"\x00")] if data else [], source)


def triage_file(
    path: str,
    since: float | None = None,
    until: float | None = None,
    block_size: int = BLOCK_SIZE,
    progress: Progress | None = None,
) -> Triage:
    """Triage the log at ``path`` (``-`` = stdin; plain, gzip or xz). Raises reader.LogOpenError.

    ``progress(bytes_read, total_bytes, events)`` is called after each block (bytes of the file as
    stored, so a compressed file's total is its compressed size)."""
    status = ReadStatus()

    def on_block(events: int) -> None:
        if progress is not None:
            progress(status.bytes_read, status.total_bytes, events)

    tri = triage_blocks(iter_blocks(path, status, block_size=block_size), source=path, on_block=on_block)
    tri.warnings.extend(status.warnings)
    if status.truncated_lines:
        tri.warnings.append(f"{status.truncated_lines} over-long line(s) truncated")
    if since is not None or until is not None:
        tri.events = [e for e in tri.events if _in_range(e.time_s, since, until)]
    return tri


def _in_range(t: float | None, since: float | None, until: float | None) -> bool:
    if t is None:
        return False
    return (since is None or t >= since) and (until is None or t <= until)

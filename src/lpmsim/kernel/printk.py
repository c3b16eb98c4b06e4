"""The kernel log: records with the printk prefix, written to ``DIR/dmesg.log``.

Mirrors kernel/printk/printk.c (v6.x, ``print_time`` and ``print_caller``): each line starts with
``[%5lu.%06lu]`` (seconds, microseconds of the record's ``local_clock()`` stamp); with
CONFIG_PRINTK_CALLER the caller id ``[%6s]`` follows without a space (``T<pid>`` from task
context, ``C<cpu>`` from interrupt/NMI context); then one space and the text.  Subsystem
prefixes (``watchdog: ``, ``rcu: ``, ``mobility: ``) are the files' ``pr_fmt`` and are part of
the text passed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LogRecord:
    time_s: float
    text: str
    caller: str | None = None


def format_prefix(uptime_s: float, caller: str | None, with_caller: bool) -> str:
    us = round(uptime_s * 1e6)
    sec, usec = divmod(us, 1_000_000)
    head = f"[{sec:5d}.{usec:06d}]"
    if with_caller:
        head += f"[{(caller or 'T0'):>6}]"
    return head + " "


class KernelLog:
    """All records of one run, in the order they were printed."""

    def __init__(self, uptime_at_start_s: float = 0.0, with_caller: bool = False) -> None:
        self.offset = uptime_at_start_s
        self.with_caller = with_caller
        self.records: list[LogRecord] = []

    def emit(self, t: float, text: str, caller: str | None = None) -> str:
        """Print ``text`` (one or more lines) at simulated time ``t``; return the first line."""
        for part in text.split("\n"):
            self.records.append(LogRecord(t, part, caller))
        return text.split("\n", 1)[0]

    def lines(self) -> list[str]:
        return [
            format_prefix(self.offset + r.time_s, r.caller, self.with_caller) + r.text for r in self.records
        ]

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines())

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text(), encoding="utf-8")
        return path

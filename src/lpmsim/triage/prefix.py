"""Strip the prefixes that tools put in front of a kernel message.

Handled, in any combination and order (up to a few layers deep):

* ``>`` mail quote markers, one or several levels (``> > [ 12.3] ...``, ``>> ...``);
* ``<N>`` syslog priority (``/proc/kmsg``, ``dmesg -r``): kernel/printk/printk.c ``<%u>``;
* printk timestamps ``[%5lu.%06lu]`` (kernel-facts.md section 10), also ``dmesg -T`` wall-clock
  ``[Fri Nov 27 04:38:50 2026]`` and ``dmesg -d`` deltas ``[  +0.000012]`` (no seconds taken from these);
* the CONFIG_PRINTK_CALLER field ``[   T123]`` / ``[    C45]``;
* raw ``/dev/kmsg`` records ``prio,seq,usec,flags[,caller=C0];text`` (Documentation/ABI/testing/dev-kmsg);
* syslog / ``journalctl -k`` lines ``Mon DD HH:MM:SS host kernel: `` and ISO-8601
  (``2023-05-01T12:00:00.123+02:00 host kernel: ``), the bare ``kernel: `` tag, and a non-kernel tag
  of our own hook (``host lpmsim-guard[123]: `` becomes ``lpmsim-guard: ``).

Messages are matched *inside* the remaining text (not only at its start), so lines that a serial
console interleaved still match; :func:`time_before` finds the printk timestamp closest before a
match for those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TS = r"\[\s*(\d{1,10})\.(\d{1,9})\]"
TIMESTAMP_RE = re.compile(_TS)
_LAYER_RE = re.compile(
    r"""\s*(?:
        <(?P<prio>\d{1,3})>
      | (?P<kprio>\d{1,3}),\d{1,20},(?P<usec>\d{1,18}),[^;]{0,60};
      | \[\s*(?P<sec>\d{1,10})\.(?P<frac>\d{1,9})\]
      | \[\s*(?P<caller>[TC]\d{1,10})\]
      | \[\s*\+?\s*\d+\.\d+\s*(?:<[^>]*>)?\]
      | \[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s[^\]]{10,40}\]
      | (?:[A-Z][a-z]{2}|\S{2,12})\s{1,2}\d{1,2}\s\d\d:\d\d:\d\d(?:\.\d+)?\s(?P<host1>\S+)\s
      | \d{4}-\d\d-\d\d[T\s]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\s(?P<host2>\S+)\s
      | kernel:\s?
      | lpmsim-guard\[\d+\]:\s?
      | (?P<quote>>)
    )""",
    re.VERBOSE,
)


MAX_LAYERS = 10  # quote levels + syslog/journald header + printk time + caller field


def has_log_prefix(text: str) -> bool:
    """``text`` starts with a prefix a logging tool writes (not a quote marker): it begins a log line."""
    m = _LAYER_RE.match(text)
    return m is not None and m.end() > 0 and m.group("quote") is None


@dataclass(frozen=True, slots=True)
class Prefixed:
    """A line split into its prefix fields and the message text."""

    text: str
    time_s: float | None = None
    caller: str | None = None


# the commonest shape, "[ 1234.567890] Message...": a printk time and then a word that starts no layer
_FAST = re.compile(r"\[\s*(\d{1,10})\.(\d{1,9})\] (?=[A-Za-z])")
_SYSLOG_AHEAD = re.compile(r"\S{2,12}\s{1,2}\d{1,2}\s\d\d:")


def split_prefix(line: str) -> Prefixed:
    """Remove up to ``MAX_LAYERS`` prefix layers from ``line``; return the text and what the prefix said."""
    m = _FAST.match(line)
    if (
        m is not None
        and not line.startswith(("kernel:", "lpmsim-guard["), m.end())
        and _SYSLOG_AHEAD.match(line, m.end()) is None
    ):
        return Prefixed(line[m.end() :], _seconds(m.group(1), m.group(2)))
    time_s: float | None = None
    caller: str | None = None
    pos = 0
    for _ in range(MAX_LAYERS):
        m = _LAYER_RE.match(line, pos)
        if m is None or m.end() == pos:
            break
        if m.group("sec") is not None and time_s is None:
            time_s = _seconds(m.group("sec"), m.group("frac"))
        elif m.group("usec") is not None and time_s is None:
            time_s = int(m.group("usec")) / 1e6
        if m.group("caller") is not None:
            caller = m.group("caller")
        if m.group(0).lstrip().startswith("lpmsim-guard["):
            return Prefixed("lpmsim-guard: " + line[m.end() :].lstrip(), time_s, caller)
        pos = m.end()
    return Prefixed(line[pos:].lstrip(" "), time_s, caller)


def _seconds(sec: str, frac: str) -> float:
    return int(sec) + int(frac) / 10 ** len(frac)


def time_before(text: str, end: int) -> float | None:
    """The last printk timestamp in ``text[:end]`` (for a message interleaved into another line)."""
    last = None
    for m in TIMESTAMP_RE.finditer(text, 0, end):
        last = m
    return None if last is None else _seconds(last.group(1), last.group(2))


_BTS = re.compile(rb"\[\s*(\d{1,10})\.(\d{1,9})\]")


def _bseconds(m: re.Match[bytes]) -> float:
    return int(m.group(1)) + int(m.group(2)) / 10 ** len(m.group(2))


def last_timestamp(block: bytes) -> float | None:
    """The printk timestamp of the last timestamped line in ``block`` (searched from its tail)."""
    end = len(block)
    while end > 0:
        start = max(0, end - 65536)
        start = block.rfind(b"\n", 0, start) + 1 if start else 0
        last = None
        for m in _BTS.finditer(block, start, end):
            last = m
        if last is not None:
            return _bseconds(last)
        end = start
    return None


def first_timestamp(block: bytes) -> float | None:
    """The first printk timestamp in the first 40 kB of ``block``."""
    m = _BTS.search(block, 0, 40000)
    return None if m is None else _bseconds(m)

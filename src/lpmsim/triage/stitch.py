"""Rejoin kernel messages that a mail client, bug tracker or terminal wrapped onto several lines.

A log pasted into a mail or a web form is wrapped at 60-100 columns between words, so one printk line
continues on the next physical line, without a prefix of its own (only the quote markers ``> `` and
indentation the paste added)::

    [ 611.52] watchdog: CPU 7 self-detected hard LOCKUP @
    _raw_spin_lock+0x40/0x90

A continuation is joined only when the line so far ends with a *known message cut short*: a proper,
word-boundary prefix of one of the :data:`TEMPLATES` below (each the printk format of a message that
triage reads, with ``%d``/``%s`` as placeholders), and only when the joined text then holds the whole
template. A line that has its own log prefix (printk timestamp, syslog or journald header, ``<N>``) is
never a continuation. Nothing else is joined, so unrelated lines are not glued together.

Templates (the kernel file printing each one is named in :mod:`lpmsim.triage.patterns`): the powerpc
and generic hard-lockup messages and the ``heartbeat`` companion, soft lockup, RCU stall headers,
workqueue lockup, hung task, NMI backtrace lines, panic (with the detectors' panic messages),
``mobility:`` phase messages and the timeout-factor line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from lpmsim.triage.prefix import has_log_prefix

# placeholders: {n} a number, {w} a word (no blanks), {tb} a "TB:%lld," field
_PLACEHOLDERS: Final = {
    "{n}": r"\d{1,12}",
    "{w}": r"\S+",
    "{tb}": r"TB:\d+,?",
}

# "[a|b]" = optional printk prefix token(s); tokens are separated by single blanks (the text is
# whitespace-collapsed before matching).
TEMPLATES: Final[tuple[str, ...]] = (
    # arch/powerpc/kernel/watchdog.c (v4.13-v4.18 and v4.19+)
    "Watchdog CPU:{n} detected Hard LOCKUP other CPUS:{w}",
    "Watchdog CPU:{n} Hard LOCKUP",
    "[watchdog:] CPU {n} detected hard LOCKUP on other CPUs {w}",
    "[watchdog:] CPU {n} self-detected hard LOCKUP @ {w}",
    "[watchdog:] CPU {n} Hard LOCKUP",
    "[watchdog:] CPU {n} {tb} last heartbeat {tb} ({n}ms ago)",
    "[watchdog:] CPU {n} {tb} last SMP heartbeat {tb} ({n}ms ago)",
    # kernel/watchdog_hld.c, kernel/watchdog.c
    "[NMI watchdog:|watchdog:] Watchdog detected hard LOCKUP on cpu {n}",
    "[watchdog:] CPU{n}: Watchdog detected hard LOCKUP on cpu {n}",
    "[NMI watchdog:|watchdog:] BUG: soft lockup - CPU#{n} stuck for {w} [{w}",
    "BUG: soft lockup detected on CPU#{n}!",
    # kernel/rcu/tree_stall.h, tree_exp.h
    "[rcu:] INFO: {w} self-detected stall on CPU",
    "[rcu:] INFO: {w} detected stalls on CPUs/tasks:",
    "[rcu:] INFO: {w} detected expedited stalls on CPUs/tasks:",
    "INFO: {w} detected stall on CPU {n}",
    # kernel/workqueue.c (the pool description has a variable number of fields)
    "BUG: workqueue lockup - pool {w} {w} {w} stuck for {w}",
    "BUG: workqueue lockup - pool {w} {w} {w} {w} stuck for {w}",
    # kernel/hung_task.c
    "INFO: task {w} blocked for more than {n} seconds.",
    "INFO: task {w} blocked in I/O wait for more than {n} seconds.",
    # lib/nmi_backtrace.c, arch/powerpc/kernel/stacktrace.c
    "NMI backtrace for cpu {n}",
    "Sending NMI from CPU {n} to CPUs {w}",
    "CPU {n} didn't respond to backtrace IPI, inspecting paca.",
    # kernel/panic.c with the panic messages of the detectors (kernel/watchdog*.c, rcu, hung_task)
    "Kernel panic - not syncing:",
    "Kernel panic - not syncing: Hard LOCKUP",
    "Kernel panic - not syncing: Watchdog detected hard LOCKUP on cpu {n}",
    "Kernel panic - not syncing: softlockup: hung tasks",
    "Kernel panic - not syncing: hung_task: blocked tasks",
    "Kernel panic - not syncing: RCU Stall",
    "Kernel panic - not syncing: Fatal exception in interrupt",
    "Kernel panic - not syncing: Unrecoverable System Reset",
    # arch/powerpc/platforms/pseries/mobility.c, arch/powerpc/kernel/watchdog.c
    "mobility: calling ibm,suspend-me on CPU {n}",
    "mobility: CPU {n} waking all threads",
    "mobility: memory transfer completed.",
    "mobility: Partition suspend attempt {n} of {n}",
    "[watchdog:] Set the NMI watchdog timeout factor to {w}",
)

TAIL_CHARS = 200  # longer than any template: only a line's tail can hold a message cut short
MAX_CONTINUATIONS = 3  # a message wrapped at 60 columns spans at most this many extra lines


def _token(tok: str) -> str:
    out = re.escape(tok)
    for ph, rx in _PLACEHOLDERS.items():
        out = out.replace(re.escape(ph), rx)
    return out


@dataclass(frozen=True)
class _Template:
    tokens: tuple[re.Pattern[str], ...]  # one pattern per blank-separated word
    full: re.Pattern[str]  # the whole template at a position


def _variants(template: str) -> list[list[str]]:
    """Token lists of a template, with and without each optional leading token."""
    m = re.match(r"\[([^\]]+)\] (.*)", template)
    if m is None:
        return [template.split(" ")]
    rest = m.group(2).split(" ")
    return [rest] + [alt.split(" ") + rest for alt in m.group(1).split("|")]


def _index() -> dict[str, list[_Template]]:
    """Templates by the first three characters of their first word (always literal)."""
    out: dict[str, list[_Template]] = {}
    for t in TEMPLATES:
        for tokens in _variants(t):
            parts = [_token(tok) for tok in tokens]
            tpl = _Template(tuple(re.compile(p) for p in parts), re.compile(" ".join(parts)))
            out.setdefault(tokens[0][:3], []).append(tpl)
    return out


_BY_HEAD: Final = _index()
_QUOTE: Final = re.compile(r"^[ \t]*(?:>[ \t]?)+")


def _cut_at(text: str) -> list[tuple[int, _Template]]:
    """Where in ``text`` a known message starts that runs to the end of ``text`` unfinished: a proper,
    word-boundary prefix of a template (offset of its first word, template). ``text`` is
    whitespace-collapsed, so words are separated by single blanks."""
    lo = 0
    if len(text) > TAIL_CHARS:
        lo = text.find(" ", len(text) - TAIL_CHARS) + 1
    words = text[lo:].split(" ") if lo or len(text) <= TAIL_CHARS else []
    n = len(words)
    out: list[tuple[int, _Template]] = []
    offset = lo
    for i in range(n):
        w = words[i]
        cands = _BY_HEAD.get(w[:3])
        if cands:
            k = n - i
            for t in cands:
                toks = t.tokens
                if k >= len(toks):
                    continue
                for j in range(k):
                    if toks[j].fullmatch(words[i + j]) is None:
                        break
                else:
                    out.append((offset, t))
        offset += len(w) + 1
    return out


def cut_short(text: str) -> bool:
    """``text`` (whitespace-collapsed) ends with a proper prefix of a known message."""
    return bool(_cut_at(text))


def completes(text: str, joined: str) -> bool:
    """``joined`` (``text`` + continuation) holds a whole template that began in ``text`` and was cut short."""
    n = len(text)
    for pos, t in _cut_at(text):
        full = t.full.match(joined, pos)
        if full is not None and full.end() > n:
            return True
    return False


def continuation(raw: str) -> str | None:
    """The text of ``raw`` as a continuation line (quote markers and blanks removed), or None when it
    cannot be one: empty, or carrying a log prefix of its own."""
    text = _QUOTE.sub("", raw, count=1).strip()
    if not text or has_log_prefix(text):
        return None
    return " ".join(text.split())


def collapse(text: str) -> str:
    """Blanks as printed by the kernel: runs of spaces and tabs (doubled by pasting) become one space."""
    return " ".join(text.split())

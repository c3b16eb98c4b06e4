"""Turn text blocks into events: find candidate lines, classify them, attach companion lines.

One event per *announcing* line (the corpus convention of tests/data/triage/INDEX.toml): companion
lines (``... last heartbeat TB:... (Nms ago)``, RCU per-CPU lines, ``(t=N jiffies ...)``), ``became
unstuck`` and NMI backtraces printed as part of a report only add fields to the event they belong to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from lpmsim.triage import patterns as P
from lpmsim.triage.events import Event, EventType
from lpmsim.triage.phases import Marker, PhaseTracker, classify_factor, classify_guard, classify_mobility
from lpmsim.triage.prefix import split_prefix, time_before
from lpmsim.triage.reader import clean
from lpmsim.triage.stitch import MAX_CONTINUATIONS, collapse, completes, continuation, cut_short
from lpmsim.triage.store import EventStore

MAX_CPUS = 65536
BOOT_BACKSTEP_S = 1.0  # a report this much earlier than the one before: the clock restarted
COMPANION_LINES = 80  # companion lines of a report follow within this many lines
BACKTRACE_CHAIN_LINES = 400  # an NMI backtrace this close to a report (or to a backtrace of it) belongs to it
REPORT_WINDOW_LINES = 60  # lines after a headline searched for the stack and the "CPU: n PID: p Comm: c" line
MAX_EVENTS = 1_500_000  # memory bound (about 80 bytes each in the EventStore): further ones are counted

_CPU_PID_COMM = re.compile(r"CPU: (?P<cpu>\d{1,12}) (?:UID: \d+ )?PID: (?P<pid>\d{1,12}) Comm: (?P<comm>\S+)")
_PC_LINE = re.compile(
    r"(?:NIP \[[0-9a-fx]*\]\s*|RIP: [0-9a-f]{4}:|pc : |PC is at )(?P<fn>[A-Za-z_][\w.]*)\+0x"
)
# frames that say nothing about where the CPU was stuck (reporting, interrupt entry, scheduler)
_NEUTRAL = re.compile(
    r"__switch_to\w*|__schedule|schedule\w*|dump_stack\w*|show_stack|show_regs|\w*panic\w*|die|__die|oops_end"
    r"|\w*watchdog\w*|\w*hrtimer\w*|timer_interrupt|decrementer_common\w*|\w*soft_nmi\w*|\w*system_reset\w*"
    r"|\w*nmi\w*|\w*irq_exit\w*|__do_softirq|do_softirq\w*|\w*interrupt\w*|ret_from_\w+|start_kernel"
    r"|kernel_init\w*|cpu_startup_entry|do_idle|rcu_\w+|print_cpu_stall\w*|check_cpu_stall|update_process_times"
    r"|tick_\w+|\w*trigger\w*backtrace\w*|\w*lockup\w*|add_taint|bust_spinlocks|\w*printk\w*|console_\w+"
    r"|exc_\w+|asm_\w+|\w*apic\w*|sysvec_\w+|el1_\w+|el0_\w+|handle_\w*irq\w*|gic_\w+"
)
_FRAME = re.compile(r"(?<![\w.])(?P<fn>[A-Za-z_][\w.]*)\+0x[0-9a-f]+")
# powerpc register dump of a CPU interrupted in real mode (RTAS): "NIP:  000000001fb41050" / "NIP [000000001fb41050]"
_REAL_MODE_NIP = re.compile(r"NIP(?::\s+| \[)0{6}[0-9a-f]{10}\b")
# raise_backtrace_ipi(): "irq_soft_mask: 0x%02x in_mce: %d in_nmi: %d current: %d (%s)"
_PACA_CURRENT = re.compile(r"in_nmi: \d+ current: (?P<pid>\d{1,9}) \((?P<comm>[^)]*)\)")
_SENDING_NMI = re.compile(r"Sending NMI from CPU (?P<by>\d{1,12}) to CPUs (?P<cpus>[\d,\-]+)")


class _New(Protocol):  # the signature of Scanner._line's local ``new``
    def __call__(self, kind: EventType, m: re.Match[str], **kw: Any) -> Event: ...  # pragma: no cover


class _When(Protocol):
    def __call__(self, m: re.Match[str]) -> float | None: ...  # pragma: no cover


def parse_cpulist(text: str) -> list[int]:
    """``%*pbl`` format ("0-3,8,10-11") -> sorted CPU numbers (bounded, tolerant of garbage)."""
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        if not a.isdigit() or (b and not b.isdigit()) or len(a) > 6 or len(b) > 6:
            continue
        lo, hi = int(a), int(b) if b else int(a)
        if hi < lo or hi >= MAX_CPUS or hi - lo > MAX_CPUS:
            continue
        cpus.update(range(lo, hi + 1))
        if len(cpus) > MAX_CPUS:
            break
    return sorted(cpus)


@dataclass
class _Open:
    event: Event
    until: int
    cpu_lines_closed: bool = False
    window_start: int = -1  # offset in the current block just after the headline line
    block_id: int = -1


@dataclass
class Scanner:
    """Consumes text blocks in order; collects events, phase changes and crash markers."""

    events: EventStore = field(default_factory=EventStore)
    tracker: PhaseTracker = field(default_factory=PhaseTracker)
    kdump_lines: list[int] = field(default_factory=list)
    wd_factor_pct: int = 0
    boot: int = 0  # restarts of the printk clock seen so far (several boots in one file)
    _last_time: float = -1.0
    dropped_events: int = 0
    _open: _Open | None = None
    _chain_until: int = -1
    _pending_windows: list[tuple[Event, int]] = field(default_factory=list)
    _staged: list[Event] = field(default_factory=list)  # events that later lines may still change
    _soft_tail: Event | None = None  # a soft lockup read without its "[comm:pid]" at the line's end
    _carry: bytes = b""  # lines kept back for the next block (a message cut short at the block's end)
    _carry_lines: int = 0
    _carry_base: int = 0  # lines before the kept-back ones

    # -- block level ---------------------------------------------------------------------------
    def feed(self, block: bytes, lines_before: int) -> int:
        """Scan one block of whole lines (bytes); return the number of lines in it.

        A message cut short on the last lines of a block (its continuation may be in the next block) is
        kept back and scanned with the next block; :meth:`finish` scans what is left at the end."""
        data = self._carry + block if self._carry else block
        self._scan(data, lines_before - self._carry_lines, final=False)
        return block.count(b"\n")

    def finish(self) -> None:
        """Scan the lines kept back by the last :meth:`feed` (the end of the input)."""
        data, base = self._carry, self._carry_base
        self._carry, self._carry_lines = b"", 0
        self._scan(data, base, final=True)

    def _candidates(self, data: bytes) -> list[tuple[int, int]]:
        cands: set[tuple[int, int]] = set()
        for kw, confirm in P.KEYWORDS.items():
            i = data.find(kw)
            while i >= 0:
                start = data.rfind(b"\n", 0, i) + 1
                end = data.find(b"\n", i)
                if end < 0:
                    end = len(data)
                if not confirm or any(c in data[start:end] for c in confirm):
                    cands.add((start, end))
                elif not data[i + len(kw) : end].strip(b": \t\r"):
                    cands.add((start, end))  # the message's first word ends the line: cut short
                i = data.find(kw, end)
        return sorted(cands)

    def _scan(self, data: bytes, base: int, final: bool) -> None:
        self._pending_windows = []
        count_pos = 0
        line_no = base
        skip_to = 0
        self._carry, self._carry_lines = b"", 0
        for start, end in self._candidates(data):
            if start < skip_to:
                continue  # consumed as the continuation of a wrapped message
            line_no += data.count(b"\n", count_pos, start)
            count_pos = start
            nxt = self._logical(data, start, end, line_no + 1, final)
            if nxt is None:  # cut short at the end of the block: scan it again with the next one
                self._carry = data[start:]
                self._carry_lines = data.count(b"\n", start)
                self._carry_base = line_no
                break
            skip_to = nxt
        self._read_windows(data)
        self._commit(base + data.count(b"\n") if final else None)

    def _commit(self, last_line: int | None) -> None:
        """Move staged events to the store, except the open report (companion lines up to
        ``COMPANION_LINES`` later may still fill it in) and those after it; all of them at the end."""
        staged = self._staged
        cut = len(staged)
        op = self._open
        if last_line is None and op is not None:
            for k, ev in enumerate(staged):
                if ev is op.event:
                    cut = k
                    break
        for ev in staged[:cut]:
            self.events.append(ev)
        self._staged = staged[cut:]

    def _logical(self, data: bytes, start: int, end: int, line: int, final: bool) -> int | None:
        """Read the candidate line ``data[start:end]``, joined with its continuations when a wrap cut a
        known message short (:mod:`lpmsim.triage.stitch`). Returns where scanning goes on, or None when
        the continuation may be in the next block."""
        raw = clean(data[start:end])
        pre = split_prefix(raw)
        text = collapse(pre.text)
        # messages whose last field is free text (a panic message, a mobility: message) are joined
        # before they are read; the others only when reading the line alone found nothing
        if "panic" in text or "mobility:" in text or "factor" in text or "lpmsim-guard" in text:
            joined, nxt = self._join(data, text, end, final)
            if nxt is None:
                return None
            if joined is not None and self._line(line, pre.time_s, joined, nxt):
                return nxt
        self._soft_tail = None
        if self._line(line, pre.time_s, text, end + 1):
            ev, self._soft_tail = self._soft_tail, None
            if ev is None:
                return end + 1
            joined, nxt = self._join(data, text, end, final=True)  # "[comm:pid]" on the next line
            m = P.SOFTLOCKUP.search(joined) if joined is not None else None
            if m is None or m.group("comm") is None or nxt is None:
                return end + 1
            ev.task = f"{m.group('comm')}:{m.group('pid')}"
            return nxt
        joined, nxt = self._join(data, text, end, final)
        if nxt is None:
            return None
        if joined is not None and self._line(line, pre.time_s, joined, nxt):
            return nxt
        cont = continuation(raw) if start > 0 else None
        if cont is not None:  # this line may continue a message cut short on the line before
            ps = data.rfind(b"\n", 0, start - 1) + 1
            ppre = split_prefix(clean(data[ps : start - 1]))
            ptext = collapse(ppre.text)
            if ptext and cut_short(ptext):
                joined = ptext + " " + cont
                if completes(ptext, joined):
                    self._line(line - 1, ppre.time_s, joined, end + 1)
        return end + 1

    def _join(self, data: bytes, text: str, end: int, final: bool) -> tuple[str | None, int | None]:
        """``text`` (the line ending at ``end``) joined with the continuation lines that complete the known
        message it was cut short in, and the offset after them; ``(None, end + 1)`` when it is no such
        message; ``(None, None)`` when the continuation may be in the next block."""
        if not cut_short(text):
            return None, end + 1
        pos = end + 1
        parts: list[str] = []
        for _ in range(MAX_CONTINUATIONS):
            if pos >= len(data):
                return (None, end + 1) if final else (None, None)
            nl = data.find(b"\n", pos)
            nl = len(data) if nl < 0 else nl
            cont = continuation(clean(data[pos:nl]))
            if cont is None:
                break
            parts.append(cont)
            joined = text + " " + " ".join(parts)
            if completes(text, joined):
                return joined, nl + 1
            if not cut_short(joined):
                break
            pos = nl + 1
        return None, end + 1

    def _read_windows(self, block: bytes) -> None:
        """Stack evidence and task of each headline of this block, from the lines that follow it."""
        for i, (ev, pos) in enumerate(self._pending_windows):
            limit = len(block)
            if i + 1 < len(self._pending_windows):
                nxt = self._pending_windows[i + 1][1]
                if nxt > pos:
                    limit = block.rfind(b"\n", 0, nxt - 1) + 1
            end = pos
            for _ in range(REPORT_WINDOW_LINES):
                nl = block.find(b"\n", end, limit)
                if nl < 0:
                    end = limit
                    break
                end = nl + 1
            if end > pos:
                apply_window(ev, clean(block[pos:end]))

    # -- line level ----------------------------------------------------------------------------
    def _line(self, line: int, time_s: float | None, text: str, after: int) -> bool:
        """Classify one (logical) line; True when it announced an event or fed the open one."""

        def when(m: re.Match[str]) -> float | None:
            return time_s if time_s is not None else time_before(text, m.start())

        def new(kind: EventType, m: re.Match[str], **kw: Any) -> Event:
            t = when(m)
            if t is not None:
                if t + BOOT_BACKSTEP_S < self._last_time:
                    self.boot += 1  # the printk clock restarted: a later boot in the same file
                self._last_time = t
            ev = Event(type=kind, line=line, time_s=t, **kw)
            ev.phase, ev.migration = self.tracker.current()
            ev.boot = self.boot
            if len(self.events) + len(self._staged) < MAX_EVENTS:
                self._staged.append(ev)
            else:
                self.dropped_events += 1
            if kind not in ("lpm_phase", "hv_stall"):
                self._open = _Open(ev, line + COMPANION_LINES)
                self._chain_until = line + BACKTRACE_CHAIN_LINES
                self._pending_windows.append((ev, after))
            return ev

        # drmgr hook lines, then crashes, then detectors, then migration markers, then companions
        m = P.GUARD.search(text) if "lpmsim-guard" in text else None
        if m:
            msg = m.group("msg").strip()
            self._phase(classify_guard(msg), line, when(m))
            new("lpm_phase", m, message=text.strip(), reason=text.strip(), variant="guard")
            return True
        m = P.PANIC.search(text) if "panic" in text else None
        if m:
            msg = m.group("msg").strip()
            new("panic", m, message=msg, variant="panic")
            return True
        if "[#" in text:
            m = P.OOPS.search(text)
            if m:
                what = m.group("what").strip()
                kind: EventType = "unrecoverable_system_reset" if P.USR_WHAT.search(what) else "oops"
                new(kind, m, message=what, variant="oops")
                return True
        m = P.HV_STALL.search(text) if "hypervisor" in text else None
        if m:
            new(
                "hv_stall",
                m,
                cpus=[int(m.group("cpu"))],
                duration_s=float(m.group("dur")),
                variant=m.group("pre") or "",
            )
            return True
        if self._hardlockup(text, new):
            return True
        if self._softlockup(text, new):
            return True
        if self._rcu(text, line, new):
            return True
        m = P.WQ_LOCKUP.search(text) if "workqueue" in text else None
        if m:
            cm = P.WQ_CPUS.search(m.group("pool"))
            new(
                "workqueue_lockup",
                m,
                cpus=parse_cpulist(cm.group("cpus")) if cm else None,
                duration_s=float(m.group("dur")),
                message=m.group("pool").strip(),
            )
            return True
        m = P.HUNG_TASK.search(text) if "blocked" in text else None
        if m:
            new(
                "hung_task",
                m,
                duration_s=float(m.group("dur")),
                task=f"{m.group('comm')}:{m.group('pid')}",
                variant="io_wait" if m.group("io") else "",
            )
            return True
        if self._nmi(text, line, new):
            return True
        if self._migration(text, line, when, new):
            return True
        if P.BOOT.search(text):
            if line > 1:
                self.boot += 1
                self._last_time = -1.0
            return True
        m = P.KDUMP.search(text)
        if m:
            self.kdump_lines.append(line)
            return True
        return self._companion(text, line)

    def _phase(self, marker: Marker, line: int, time_s: float | None) -> None:
        self.tracker.mark(marker, line, time_s)

    def _hardlockup(self, text: str, new: _New) -> bool:
        if "LOCKUP" not in text:
            return False
        m = P.HL_PPC_OLD_OTHER.search(text)
        if m:
            new(
                "hardlockup",
                m,
                cpus=parse_cpulist(m.group("cpus")),
                detected_by=int(m.group("by")),
                variant="ppc_old_other",
            )
            return True
        m = P.HL_PPC_OLD_SELF_OR_IPI.search(text)
        if m:
            new("hardlockup", m, cpus=[int(m.group("cpu"))], variant="ppc_old_self_or_ipi")
            return True
        m = P.HL_PPC_OTHER.search(text)
        if m:
            new(
                "hardlockup",
                m,
                cpus=parse_cpulist(m.group("cpus")),
                detected_by=int(m.group("by")),
                variant="ppc_other",
            )
            return True
        m = P.HL_PPC_SELF.search(text)
        if m:
            new("hardlockup", m, cpus=[int(m.group("cpu"))], variant="ppc_self", stack_fn=m.group("pc"))
            return True
        m = P.HL_PPC_IPI.search(text)
        if m:
            new("hardlockup", m, cpus=[int(m.group("cpu"))], variant="ppc_ipi")
            return True
        m = P.HL_GENERIC.search(text)
        if m:
            pre = m.group("pre") or ""
            variant = {"NMI watchdog: ": "generic_nmi", "BookE ": "vendor_booke"}.get(pre, "generic")
            by = m.group("by")
            new(
                "hardlockup",
                m,
                cpus=[int(m.group("cpu"))],
                variant=variant,
                detected_by=int(by) if by else None,
            )
            return True
        return False

    def _softlockup(self, text: str, new: _New) -> bool:
        if "lockup" not in text:
            return False
        m = P.SOFTLOCKUP.search(text)
        if m:
            comm, pid = m.group("comm"), m.group("pid")
            ev = new(
                "softlockup",
                m,
                cpus=[int(m.group("cpu"))],
                duration_s=float(m.group("dur")),
                task=f"{comm}:{pid}" if comm is not None else None,
                variant="nmi_watchdog_prefix" if (m.group("pre") or "").startswith("NMI") else "",
            )
            if comm is None and not text[m.end() :].strip():
                self._soft_tail = ev
            return True
        m = P.SOFTLOCKUP_OLD.search(text)
        if m:
            new("softlockup", m, cpus=[int(m.group("cpu"))], variant="old")
            return True
        return False

    def _rcu(self, text: str, line: int, new: _New) -> bool:
        if "stall" not in text or "INFO: " not in text:
            return False
        for pat, kind in ((P.RCU_EXP, "expedited"), (P.RCU_SELF, "self"), (P.RCU_OTHER, "other")):
            m = pat.search(text)
            if m:
                ev = new("rcu_stall", m, variant=kind, message=m.group("flavor").removesuffix("_state"))
                rest = m.group("rest")
                im = P.RCU_INLINE_CPUS.search(rest)
                if im:
                    cpus = [int(x) for x in P.RCU_INLINE_CPU.findall(im.group("list")) if len(x) < 6]
                    ev.cpus = sorted(set(cpus)) or None
                    assert self._open is not None
                    self._open.cpu_lines_closed = kind != "other" or bool(ev.cpus)
                jm = P.RCU_EXP_JIFFIES.search(rest) or P.RCU_T_JIFFIES.search(rest)
                if jm:
                    ev.jiffies = int(jm.group("j"))
                bm = P.RCU_DETECTED_BY.search(rest)
                if bm:
                    ev.detected_by = int(bm.group("by"))
                return True
        m = P.RCU_OLD_SELF.search(text)
        if m:
            ev = new("rcu_stall", m, variant="self", message=m.group("flavor"), cpus=[int(m.group("cpu"))])
            jm = P.RCU_T_JIFFIES.search(m.group("rest"))
            if jm:
                ev.jiffies = int(jm.group("j"))
            return True
        return False

    def _nmi(self, text: str, line: int, new: _New) -> bool:
        if "NMI" not in text and "backtrace IPI" not in text:
            return False
        m = P.NMI_NO_RESPONSE.search(text)
        if m:
            new("nmi_backtrace", m, cpus=[int(m.group("cpu"))], variant="no_response")
            return True
        in_report = line <= self._chain_until
        m = _SENDING_NMI.search(text)
        if m:
            if in_report:
                self._chain_until = line + BACKTRACE_CHAIN_LINES
            else:
                new(
                    "nmi_backtrace",
                    m,
                    cpus=parse_cpulist(m.group("cpus")),
                    detected_by=int(m.group("by")),
                    variant="sending",
                )
            return True
        m = P.NMI_BACKTRACE.search(text)
        if m:
            if in_report:
                self._chain_until = line + BACKTRACE_CHAIN_LINES
                return True
            new("nmi_backtrace", m, cpus=[int(m.group("cpu"))], variant="backtrace")
            return True
        return False

    def _migration(self, text: str, line: int, when: _When, new: _New) -> bool:
        m = P.WD_FACTOR.search(text)
        marker: Marker
        if m:
            pct = int(m.group("pct")[:9])
            self.wd_factor_pct = pct
            marker = classify_factor(pct)
        else:
            m = P.MOBILITY.search(text)
            if m:
                marker = classify_mobility(m.group("msg"))
            else:
                m = P.POST_MOBILITY.search(text)
                if not m:
                    return False
                marker = "transfer"
        msg = text[m.start() :].strip()
        self._phase(marker, line, when(m))
        cm = P.MOBILITY_CPU.search(msg)
        new(
            "lpm_phase",
            m,
            reason=msg,
            message=msg,
            cpus=[int(cm.group("cpu"))] if cm else None,
            variant=marker,
        )
        return True

    def _companion(self, text: str, line: int) -> bool:
        op = self._open
        if op is None or line > op.until:
            return False
        ev = op.event
        if ev.type == "hardlockup":
            m = P.HL_HEARTBEAT.search(text)
            if m and ev.duration_s is None:
                cpu = int(m.group("cpu"))
                if cpu == ev.detected_by or (ev.cpus and cpu in ev.cpus):
                    ev.duration_s = int(m.group("ms")[:12]) / 1000.0
            return m is not None
        if ev.type != "rcu_stall":
            return False
        found = False
        if ev.type == "rcu_stall":
            if not op.cpu_lines_closed:
                m = P.RCU_CPU_LINE.search(text)
                if m:
                    cpus = set(ev.cpus or [])
                    cpus.add(int(m.group("cpu")[:6]))
                    ev.cpus = sorted(cpus)
                    found = True
                    if ev.variant == "self":
                        op.cpu_lines_closed = True
            m = P.RCU_T_JIFFIES.search(text)
            if m and ev.jiffies is None:
                ev.jiffies = int(m.group("j")[:12])
                op.cpu_lines_closed = found = True
            m = P.RCU_DETECTED_BY.search(text)
            if m and ev.detected_by is None:
                ev.detected_by = int(m.group("by")[:6])
                op.cpu_lines_closed = found = True
        return found


def apply_window(ev: Event, window: str) -> None:
    """Read the stack evidence (lock routine / memory access / RTAS) and the task from a report's lines."""
    if ev.task is None and ev.type in (
        "hardlockup",
        "rcu_stall",
        "nmi_backtrace",
        "oops",
        "unrecoverable_system_reset",
    ):
        for m in _CPU_PID_COMM.finditer(window) if "Comm:" in window else ():
            cpu = int(m.group("cpu")[:6])
            if ev.cpus is None or cpu in ev.cpus or ev.type in ("oops", "unrecoverable_system_reset"):
                ev.task = f"{m.group('comm')}:{m.group('pid')}"
                if ev.cpus is None:
                    ev.cpus = [cpu]
                break
    if ev.task is None and ev.type == "nmi_backtrace":
        cm = _PACA_CURRENT.search(window) if "in_nmi" in window else None
        if cm:
            ev.task = f"{cm.group('comm')}:{cm.group('pid')}"
    fns: list[str] = []
    if ev.stack_fn:
        fns.append(ev.stack_fn.split("+")[0])
    pm = (
        _PC_LINE.search(window)
        if ("NIP" in window or "RIP" in window or "pc :" in window or "PC is" in window)
        else None
    )
    if pm:
        fns.append(pm.group("fn"))
    first = window.find("+0x", 0, 6000)  # no "fn+0x..." frame at all: skip the frame scan
    if first >= 0:
        start = max(0, window.rfind("\n", 0, first) + 1)
        fns.extend(m.group("fn") for m in _FRAME.finditer(window, start, 6000))
    fns = [fn.split(".")[0] for fn in fns]
    fns = [fn for fn in fns if not _NEUTRAL.fullmatch(fn)]
    for fn in fns[:12]:
        if P.RTAS_FUNCS.fullmatch(fn):
            ev.stack, ev.stack_fn = "rtas", fn
            return
        if P.LOCK_FUNCS.fullmatch(fn):
            ev.stack, ev.stack_fn = "lock", fn
            return
        if P.MEMORY_FUNCS.fullmatch(fn):
            ev.stack, ev.stack_fn = "memory", fn
            return
    if fns and not ev.stack_fn:
        ev.stack_fn = fns[0]
    if "NIP" in window and _REAL_MODE_NIP.search(window):
        ev.stack, ev.stack_fn = "rtas", "real-mode NIP"  # firmware (RTAS) code runs in real mode

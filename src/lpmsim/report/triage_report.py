"""The report of a triaged log (``lpmsim triage LOG --html FILE``): the events on a time axis by
CPU, coloured by verdict, the migration phases as bands, the verdicts and the log lines.

The log lines are read again from the file (a second pass of ``triage.reader.iter_blocks``, keeping
only the lines that announce an event or start a phase), so a large log is never held whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lpmsim.report.html import HOVER_MAX, Figure, Page, Section, Table, ptext
from lpmsim.triage.events import Triage
from lpmsim.triage.reader import iter_blocks

MAX_MARKERS = 20_000
MAX_ROWS = 5_000
LINE_MAX = 20_000

VERDICT_COLOUR = {
    "consistent": "#1a9850",
    "inconsistent": "#d73027",
    "unknown": "#fdae61",
    "phase": "#4575b4",
}
TYPE_SYMBOL = {
    "hardlockup": "x",
    "softlockup": "diamond",
    "rcu_stall": "triangle-up",
    "workqueue_lockup": "square",
    "hung_task": "star",
    "nmi_backtrace": "cross",
    "panic": "hexagram",
    "oops": "hexagram-open",
    "unrecoverable_system_reset": "bowtie",
    "lpm_phase": "line-ns-open",
    "hv_stall": "circle-open",
}
PHASE_COLOUR = {
    "before_suspend": "rgba(66,146,198,0.10)",
    "suspend": "rgba(80,80,80,0.18)",
    "transfer": "rgba(254,196,79,0.18)",
    "after_transfer": "rgba(120,198,121,0.12)",
    "after_abort": "rgba(215,48,39,0.10)",
}


def wanted_lines(tri: Triage) -> set[int]:
    """The 1-based numbers of the lines the page shows: events' announcing lines, phases' starts."""
    out = {ev.line for k, ev in enumerate(tri.events) if k < MAX_ROWS}
    out.update(p.start_line for p in tri.phases)
    return out


def read_lines(path: str, wanted: set[int]) -> dict[int, str]:
    """The text of lines ``wanted`` of the log at ``path`` (counted as the triage counts them)."""
    found: dict[int, str] = {}
    if not wanted:
        return found
    last = max(wanted)
    n = 0
    for block in iter_blocks(path):
        parts = block.split(b"\n")
        if parts and parts[-1] == b"":
            parts.pop()
        if n + len(parts) >= min(wanted):
            for i, raw in enumerate(parts, start=n + 1):
                if i in wanted:
                    text = raw.decode("utf-8", errors="replace").rstrip("\r")
                    found[i] = text[:LINE_MAX] + (
                        f"… ({len(text) - LINE_MAX:,} more characters)" if len(text) > LINE_MAX else ""
                    )
        n += len(parts)
        if n >= last:
            break
    return found


def build_triage(results: Sequence[Triage], texts: Sequence[dict[int, str]]) -> Page:
    names = ", ".join(t.source for t in results)
    total = sum(len(t.events) for t in results)
    page = Page(
        title=f"lpmsim triage: {names}",
        kind="triage",
        subtitle=f"{total:,} event(s) in {len(results)} log(s)",
        main="triage_0",
    )
    for k, (tri, lines) in enumerate(zip(results, texts, strict=True)):
        page.sections.extend(_sections(k, tri, lines, len(results) > 1))
    return page


def _sections(k: int, tri: Triage, lines: dict[int, str], multi: bool) -> list[Section]:
    head = f"{tri.source}: " if multi else ""
    sec = Section(
        f"{head}events by CPU",
        notes=[
            f"{tri.lines:,} lines; {len(tri.events):,} events; printk time "
            + (
                f"{tri.first_time_s:.6f} to {tri.last_time_s:.6f} s."
                if tri.first_time_s is not None and tri.last_time_s is not None
                else "not found."
            ),
            "Colour: the verdict (green consistent with an LPM stall, red inconsistent, orange unknown, blue a phase line); hover a marker for its line.",
        ],
    )
    sec.notes.extend(tri.warnings)
    timed = [ev for ev in tri.events if ev.time_s is not None]
    if len(timed) < len(tri.events):
        sec.notes.append(
            f"{len(tri.events) - len(timed):,} event(s) without a printk time are in the table only."
        )
    if len(timed) > MAX_MARKERS:
        sec.notes.append(f"The first {MAX_MARKERS:,} timed events are drawn.")
        timed = timed[:MAX_MARKERS]
    groups: dict[str, list[Any]] = {}
    for ev in timed:
        groups.setdefault(ev.type, []).append(ev)
    data = []
    for typ, evs in groups.items():
        texts = []
        for ev in evs:
            cpus = ", ".join(str(c) for c in ev.cpus or [])
            head_txt = (
                f"{typ} — line {ev.line} at {ev.time_s:.6f} s"
                + (f" — CPUs {cpus}" if cpus else "")
                + f" — {ev.verdict}"
            )
            if ev.phase:
                head_txt += f" ({ev.phase})"
            if ev.task:
                head_txt += f" — task {ev.task}"
            body = lines.get(ev.line, "")
            texts.append(
                ptext(head_txt, HOVER_MAX)
                + "<br>"
                + ptext(body, HOVER_MAX)
                + ("<br>" + ptext(ev.reason, HOVER_MAX) if ev.reason else "")
            )
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": ptext(f"{typ} ({len(evs)})"),
                "x": [ev.time_s for ev in evs],
                "y": [(ev.cpus[0] if ev.cpus else -1) for ev in evs],
                "text": texts,
                "hoverinfo": "text",
                "cliponaxis": False,
                "meta": "events",
                "marker": {
                    "symbol": TYPE_SYMBOL.get(typ, "circle"),
                    "size": 11,
                    "color": [VERDICT_COLOUR.get(ev.verdict, "#333") for ev in evs],
                    "line": {"width": 1.5, "color": [VERDICT_COLOUR.get(ev.verdict, "#333") for ev in evs]},
                },
            }
        )
    shapes, annotations = [], []
    lo = tri.first_time_s if tri.first_time_s is not None else 0.0
    hi = tri.last_time_s if tri.last_time_s is not None else lo + 1.0
    for p in tri.phases:
        if p.start_s is None:
            continue
        x1 = p.end_s if p.end_s is not None else hi
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": p.start_s,
                "x1": x1,
                "y0": 0,
                "y1": 1,
                "fillcolor": PHASE_COLOUR.get(p.name, "rgba(0,0,0,0.05)"),
                "line": {"width": 0},
                "layer": "below",
            }
        )
        annotations.append(
            {
                "x": (p.start_s + x1) / 2,
                "y": 1,
                "xref": "x",
                "yref": "paper",
                "yanchor": "bottom",
                "text": ptext(p.name.replace("_", " ")),
                "showarrow": False,
                "font": {"size": 11},
            }
        )
    layout = {
        "height": 460,
        "hovermode": "closest",
        "shapes": shapes,
        "annotations": annotations,
        "margin": {"t": 50, "l": 70, "r": 30, "b": 50},
        "plot_bgcolor": "#fff",
        "xaxis": {"title": {"text": "printk time (s)"}, "gridcolor": "#eee"},
        "yaxis": {"title": {"text": "CPU (-1: none named)"}, "gridcolor": "#eee", "zeroline": False},
        "legend": {"orientation": "h", "y": -0.18},
    }
    sec.figures.append(Figure(f"triage_{k}", data, layout))
    out = [sec]
    if tri.phases:
        rows = [
            [p.name, p.migration, p.start_s, p.end_s, p.start_line, p.end_line, lines.get(p.start_line, "")]
            for p in tri.phases
        ]
        out.append(
            Section(
                f"{head}migration phases",
                tables=[
                    Table(
                        f"phases_{k}",
                        "",
                        [
                            "phase",
                            "migration",
                            "start (s)",
                            "end (s)",
                            "start line",
                            "end line",
                            "starting line",
                        ],
                        rows,
                    )
                ],
            )
        )
    rows = [
        [
            ev.line,
            ev.time_s,
            ev.type,
            ", ".join(str(c) for c in ev.cpus or []),
            ev.task,
            ev.phase,
            ev.verdict,
            lines.get(ev.line, ""),
            ev.reason,
        ]
        for ev in list(tri.events)[:MAX_ROWS]
    ]
    note = f"The first {MAX_ROWS:,} of {len(tri.events):,} events." if len(tri.events) > MAX_ROWS else ""
    out.append(
        Section(
            f"{head}verdicts and log lines",
            tables=[
                Table(
                    f"events_{k}",
                    "",
                    ["line", "time (s)", "type", "CPUs", "task", "phase", "verdict", "log line", "reason"],
                    rows,
                    note,
                )
            ],
        )
    )
    return out

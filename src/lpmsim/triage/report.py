"""Render a triage: a rich table for the terminal, or JSON for scripts."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lpmsim.outputs.text import visible
from lpmsim.triage.calibrate import bounds
from lpmsim.triage.events import Triage

_VERDICT_STYLE = {"consistent": "green", "inconsistent": "bold red", "unknown": "yellow", "phase": "cyan"}


def _items(results: list[Triage], calibrate: bool) -> dict[str, Iterator[dict[str, Any]]]:
    multi = len(results) > 1

    def tagged(tri: Triage, d: dict[str, Any]) -> dict[str, Any]:
        if multi:
            d["file"] = tri.source
        return d

    out: dict[str, Iterator[dict[str, Any]]] = {
        "events": (tagged(t, ev.to_json()) for t in results for ev in t.events),
        "phases": (tagged(t, ph.to_json()) for t in results for ph in t.phases),
    }
    if calibrate:
        out["calibration"] = (tagged(t, b.to_json()) for t in results for b in bounds(t))
    return out


def to_json_obj(results: list[Triage], calibrate: bool = False) -> dict[str, Any]:
    """The ``--json`` object. One log: exactly ``{"events": [...], "phases": [...]}`` (plus
    ``"calibration"`` with ``--calibrate``). Several logs: events and phases concatenated, each entry
    with an extra ``"file"`` key."""
    return {k: list(v) for k, v in _items(results, calibrate).items()}


def write_json(results: list[Triage], fh: TextIO, calibrate: bool = False) -> None:
    """Write :func:`to_json_obj` one entry at a time, one entry per line (a million events never sit in
    memory as one object or one string, and each line is encoded by the C JSON encoder)."""
    fh.write("{")
    for k, (key, items) in enumerate(_items(results, calibrate).items()):
        fh.write(("," if k else "") + f"\n  {json.dumps(key)}: [")
        n = 0
        for d in items:
            fh.write(("," if n else "") + "\n    " + _ENCODER.encode(d))
            n += 1
        fh.write("\n  ]" if n else "]")
    fh.write("\n}")


_ENCODER = json.JSONEncoder(ensure_ascii=False)


def to_json(results: list[Triage], calibrate: bool = False) -> str:
    buf = io.StringIO()
    write_json(results, buf, calibrate)
    return buf.getvalue()


def _num(x: float | None, fmt: str = "{:.6f}") -> str:
    return "-" if x is None else fmt.format(x)


def _cpus(cpus: list[int] | None) -> str:
    if not cpus:
        return "-"
    if len(cpus) > 8:
        return f"{cpus[0]}..{cpus[-1]} ({len(cpus)})"
    return ",".join(map(str, cpus))


def render(results: list[Triage], console: Console, calibrate: bool = False) -> None:
    """Print the timeline (phases), the events table, the crash path and (optionally) calibration bounds."""
    for tri in results:
        console.print(
            Text(f"{visible(tri.source)}: {tri.lines} lines, {len(tri.events)} events", style="bold"),
            soft_wrap=True,
        )
        if tri.phases:
            pt = Table(title="Migration phases", title_justify="left")
            for col in ("migration", "phase", "start line", "start s", "end line", "end s"):
                pt.add_column(col, justify="right" if col != "phase" else "left")
            for ph in tri.phases:
                pt.add_row(
                    str(ph.migration),
                    ph.name,
                    str(ph.start_line),
                    _num(ph.start_s, "{:.3f}"),
                    str(ph.end_line),
                    _num(ph.end_s, "{:.3f}"),
                )
            console.print(pt)
        else:
            console.print(
                Text("No migration in this log (no mobility:, timeout-factor or lpmsim-guard lines).")
            )
        if tri.events:
            et = Table(title="Events", title_justify="left", show_lines=False)
            for col in ("line", "time s", "type", "CPUs", "dur s", "task", "phase", "verdict"):
                et.add_column(
                    col, overflow="fold", justify="right" if col in ("line", "time s", "dur s") else "left"
                )
            for ev in tri.events:
                et.add_row(
                    str(ev.line),
                    _num(ev.time_s, "{:.3f}"),
                    ev.type,
                    _cpus(ev.cpus),
                    _num(ev.duration_s, "{:g}"),
                    Text(visible(ev.task or "-")),  # from the log: never read as markup
                    ev.phase or "-",
                    Text(ev.verdict, style=_VERDICT_STYLE.get(ev.verdict, "")),
                )
            console.print(et)
            console.print(Text("Reasons", style="bold"))
            for ev in tri.events:
                console.print(
                    Text(f"  line {ev.line} ({ev.type}): ", style="dim") + Text(visible(ev.reason)),
                    soft_wrap=True,
                )
        if tri.crash_path:
            console.print(
                Text("Crash path: ", style="bold red") + Text(visible(tri.crash_path)), soft_wrap=True
            )
        if calibrate:
            bl = bounds(tri)
            ct = Table(title="Calibration: lower bounds implied by the reports", title_justify="left")
            for col in ("line", "type", "CPUs", "quantity", ">= value", "unit", "constrains", "basis"):
                ct.add_column(col, overflow="fold")
            for b in bl:
                ct.add_row(
                    str(b.line),
                    b.type,
                    _cpus(b.cpus),
                    b.quantity,
                    f"{b.lower_bound:g}",
                    b.unit,
                    b.constrains,
                    b.basis,
                )
            if bl:
                console.print(ct)
                worst: dict[int, float] = {}
                for b in bl:
                    for c in b.cpus or []:
                        worst[c] = max(worst.get(c, 0.0), b.lower_bound)
                if worst:
                    top = sorted(worst.items(), key=lambda kv: -kv[1])[:10]
                    console.print(
                        "Longest stall per CPU (lower bound, s): "
                        + ", ".join(f"CPU {c}: {v:g}" for c, v in top)
                    )
            else:
                console.print("No report in this log implies a stall bound.")

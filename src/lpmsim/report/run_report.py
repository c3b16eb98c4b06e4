"""The report of one run (``lpmsim run --out DIR [--trace]``): a per-CPU timeline with the
detectors' reports, the VASI phases and the mobility flow's steps, and the transfer over time.

Rows of the timeline: every vCPU up to ``ALL_ROWS`` of them; above that, the CPUs that matter
(named by a report or printing it, holding the RTAS lock, spinning, stalled or with interrupts
off longest), at most ``MAX_ROWS``, and a panel of counts over all vCPUs (stalled, interrupts
off, spinning, mean steal).  Without a trace (``--trace`` not given) the page shows the reports,
the phases and the log from ``summary.json`` and ``dmesg.log`` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lpmsim.outputs.trace import RunTrace
from lpmsim.report.html import HOVER_MAX, Figure, Page, Section, Table, ptext

ALL_ROWS = 64
MAX_ROWS = 48
MAX_SEGMENTS = 20_000  # intervals drawn (the longest ones); the trace may hold more
MAX_LOG_ROWS = 5_000

DETECTOR_STYLE: dict[str, tuple[str, str]] = {
    "hardlockup": ("x", "#d62728"),
    "softlockup": ("diamond", "#ff7f0e"),
    "rcu_stall": ("triangle-up", "#9467bd"),
    "workqueue_lockup": ("square", "#8c564b"),
    "hung_task": ("star", "#e377c2"),
    "nmi_ipi": ("cross", "#17becf"),
    "hv_stall": ("circle-open", "#7f7f7f"),
    "panic": ("hexagram", "#000000"),
}
# (kind, label) -> (legend name, colour, lane offset)
LANES: dict[tuple[str, str | None], tuple[str, str, float]] = {
    ("stall", None): ("stalled in the hypervisor", "#d62728", 0.0),
    ("steal", None): ("steal (fluid faults ≥ 10 %)", "#f4a582", 0.0),
    ("ctx", "irqs_hard_off"): ("irqs hard-off", "#542788", -0.28),
    ("ctx", "irqs_soft_off"): ("irqs soft-off", "#8073ac", -0.28),
    ("ctx", "preempt_off"): ("preempt-off", "#4393c3", -0.28),
    ("spin", None): ("spinning on a lock", "#fdb863", 0.28),
    ("rtas", None): ("RTAS call (rtas_lock held)", "#1b7837", 0.28),
}
PHASE_BANDS = (
    ("enabled", "suspended", "pre-copy", "rgba(66,146,198,0.10)"),
    ("suspended", "resumed", "blackout", "rgba(80,80,80,0.18)"),
    ("resumed", "completed", "post-copy", "rgba(254,196,79,0.16)"),
)


@dataclass(frozen=True)
class RunInputs:
    summary: dict[str, Any]
    log: list[str]
    trace: RunTrace | None
    source: str


def build(inp: RunInputs) -> Page:
    s = inp.summary
    sc = s.get("scenario") or {}
    name = str(sc.get("name", "run"))
    vcpus = int((sc.get("partition") or {}).get("vcpus", 0) or 0)
    title = f"lpmsim run: {name}, seed {s.get('seed')}"
    outcome = s.get("outcome", "?")
    subtitle = f"{vcpus:,} vCPUs, {(s.get('sim') or {}).get('mode', '?')} mode; outcome: {outcome}; from {inp.source}"
    page = Page(title=title, kind="run", subtitle=subtitle, main="timeline")
    reports = s.get("events") or []
    phases = _phases(s)
    end = _end(s, inp.trace)
    tl = Section("Timeline")
    if inp.trace is None:
        tl.notes.append(
            "This run was not traced: the timeline shows the reports and the phases only. "
            "`lpmsim run --trace --out DIR` records the per-CPU states and the transfer over time."
        )
    rows, why = _rows(inp.trace, reports, vcpus)
    tl.figures.append(_timeline(inp.trace, reports, rows, phases, end, vcpus))
    tl.notes.extend(_timeline_notes(inp.trace, rows, vcpus, why))
    page.sections.append(tl)
    page.sections.append(_figures_section(s))
    page.sections.append(_reports_section(reports))
    page.sections.append(_log_section(inp.log, inp.trace))
    return page


def _end(s: dict[str, Any], trace: RunTrace | None) -> float:
    if trace is not None:
        return float(trace.meta["end_s"])
    mig = s.get("migration") or {}
    cands = [float(e["time_s"]) for e in s.get("events") or []]
    if mig.get("total_s") is not None:
        cands.append(float(mig["total_s"]))
    return max(cands) if cands else 1.0


def _phases(s: dict[str, Any]) -> dict[str, dict[str, float]]:
    mig = s.get("migration") or {}
    vasi = {k.removesuffix("_s"): float(v) for k, v in (mig.get("vasi") or {}).items() if v is not None}
    lpm = {k.removesuffix("_s"): float(v) for k, v in (s.get("lpm") or {}).items() if v is not None}
    return {"vasi": vasi, "mobility": lpm}


def _rows(
    trace: RunTrace | None, reports: list[dict[str, Any]], vcpus: int
) -> tuple[list[int], dict[int, str]]:
    """The CPUs shown as rows, and why each was picked (large partitions)."""
    why: dict[int, str] = {}
    if vcpus <= ALL_ROWS:
        return list(range(vcpus)), why

    def pick(cpus: list[int], reason: str) -> None:
        for c in cpus:
            if len(why) >= MAX_ROWS:
                return
            if 0 <= c < vcpus and c not in why:
                why[c] = reason

    named: list[int] = []
    for e in reports:
        if e.get("by") is not None:
            named.append(int(e["by"]))
        named.extend(int(c) for c in e.get("cpus") or [])
    pick(named, "reported")
    if trace is not None:
        cpus = trace.cpus.to_pydict()

        def top(col: str, n: int) -> list[int]:
            vals = cpus[col]
            order = sorted((i for i in range(len(vals)) if vals[i] > 0), key=lambda i: (-vals[i], i))
            return order[:n]

        pick(top("rtas_total_s", 8), "RTAS")
        pick(top("spin_total_s", 8), "spinning longest")
        pick(top("stall_max_s", 12), "stalled longest")
        pick(top("steal_total_s", 8), "most steal")
        pick(top("ctx_max_s", 12), "irqs/preempt off longest")
    return sorted(why), why


def _timeline_notes(trace: RunTrace | None, rows: list[int], vcpus: int, why: dict[int, str]) -> list[str]:
    notes = []
    if vcpus > ALL_ROWS:
        counts: dict[str, int] = {}
        for r in why.values():
            counts[r] = counts.get(r, 0) + 1
        picked = ", ".join(f"{n} {r}" for r, n in counts.items())
        notes.append(
            f"{vcpus:,} vCPUs: the top panel counts all of them; the rows below are the {len(rows)} "
            f"that matter ({picked or 'none'})."
        )
    if trace is not None:
        m = trace.meta
        if m.get("dropped_intervals"):
            notes.append(
                f"The trace kept the {trace.states.num_rows:,} longest intervals; "
                f"{int(m['dropped_intervals']):,} shorter than {float(m['kept_min_s']):.3g} s are counted "
                "per CPU but not drawn."
            )
    notes.append(
        "Drag to zoom, double-click to see the whole run; hover a marker for the detector's log line."
    )
    return notes


def _timeline(
    trace: RunTrace | None,
    reports: list[dict[str, Any]],
    rows: list[int],
    phases: dict[str, dict[str, float]],
    end: float,
    vcpus: int,
) -> Figure:
    traces: list[dict[str, Any]] = []
    ypos = {c: i for i, c in enumerate(rows)}
    nrows = max(len(rows), 1)
    have_series = trace is not None and trace.series.num_rows > 0
    panels: list[tuple[str, str]] = []  # (yaxis name, title) of the panels under the timeline
    if have_series:
        panels = [
            ("y3", "missing pages"),
            ("y4", "link utilisation"),
            ("y5", "fault latency (s)"),
            ("y6", "demand faults/s"),
        ]
    agg = have_series
    # heights (px): the aggregate panel, the CPU rows, each series panel
    row_px = 16 if nrows > 24 else 22
    h_agg = 150 if agg else 0
    h_rows = max(nrows * row_px, 140)
    h_panel = 130
    gap = 30
    total = h_agg + h_rows + len(panels) * h_panel + gap * (len(panels) + (1 if agg else 0)) + 110
    plot_h = total - 110

    def dom(top_px: float, h: float) -> list[float]:
        top = 1 - top_px / plot_h
        return [max(0.0, top - h / plot_h), min(1.0, top)]

    layout: dict[str, Any] = {
        "height": total,
        "margin": {"l": 90, "r": 20, "t": 70, "b": 50},
        "hovermode": "closest",
        "legend": {
            "x": 1.01,
            "y": 1.0,
            "xanchor": "left",
            "yanchor": "top",
            "font": {"size": 11},
            "tracegroupgap": 12,
        },
        "plot_bgcolor": "#ffffff",
        "xaxis": {
            "title": {"text": "simulated time since the migration started (s)"},
            "anchor": "y" if not panels else panels[-1][0],
            "showgrid": True,
            "gridcolor": "#eee",
        },
        "shapes": [],
        "annotations": [],
    }
    y_cursor = 0.0
    if agg:
        layout["yaxis2"] = {
            "domain": dom(0, h_agg),
            "title": {"text": f"of {vcpus:,} vCPUs"},
            "rangemode": "tozero",
            "anchor": "x",
        }
        y_cursor = h_agg + gap
        assert trace is not None
        ser = trace.series.to_pydict()
        steal = [None if v is None else v * vcpus for v in ser["steal_mean"]]
        for y, name, colour, shape, dash in (
            (
                _rolling(ser["vcpus_blocked"], 25),
                "vCPUs blocked on faults (mean of 25 steps)",
                "#b2182b",
                "vh",
                "dot",
            ),
            (ser["cpus_stalled"], "vCPUs stalled", "#d62728", "hv", "solid"),
            (ser["cpus_irqs_off"], "vCPUs irqs off", "#542788", "hv", "solid"),
            (ser["cpus_spinning"], "vCPUs spinning", "#fdb863", "hv", "solid"),
            (steal, "mean steal × vCPUs", "#f4a582", "hv", "solid"),
        ):
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": ptext(name),
                    "x": ser["time_s"],
                    "y": _clean(y),
                    "xaxis": "x",
                    "yaxis": "y2",
                    "line": {"color": colour, "width": 1.5, "shape": shape, "dash": dash},
                    "legendgroup": "agg",
                }
            )
    layout["yaxis"] = {
        "domain": dom(y_cursor, h_rows),
        "tickmode": "array",
        "tickvals": list(range(len(rows))),
        "ticktext": [f"cpu {c}" for c in rows],
        "range": [len(rows) - 0.5, -0.5 if rows else -1.5],
        "showgrid": False,
        "zeroline": False,
        "anchor": "x",
        "tickfont": {"size": 10},
    }
    y_cursor += h_rows + gap
    if trace is not None:
        traces.extend(_interval_traces(trace, ypos, row_px))
    traces.append(_report_trace(reports, ypos))
    for yname, title in panels:
        key = "yaxis" + yname[1:]
        layout[key] = {
            "domain": dom(y_cursor, h_panel),
            "title": {"text": ptext(title), "font": {"size": 11}},
            "anchor": "x",
            "rangemode": "tozero",
        }
        y_cursor += h_panel + gap
    if have_series:
        assert trace is not None
        traces.extend(_series_traces(trace))
        layout["yaxis4"]["range"] = [0, 1.05]
    start = phases["vasi"].get("suspending")
    if start is not None and end > start:
        lo = max(0.0, start - 0.08 * (end - start) - 2.0)
        layout["xaxis"]["range"] = [lo, end + 0.02 * (end - lo)]
    else:
        layout["xaxis"]["range"] = [0, end * 1.02 if end > 0 else 1]
    _phase_shapes(layout, phases, end, tuple(layout["xaxis"]["range"]))
    return Figure(id="timeline", data=traces, layout=layout)


def _interval_traces(trace: RunTrace, ypos: dict[int, int], row_px: int) -> list[dict[str, Any]]:
    """One line trace per lane: each interval a segment (two points and a gap), its hover from
    ``customdata`` (cpu, seconds, start, end, label) so the page carries numbers, not sentences."""
    st = trace.states.to_pydict()
    n = len(st["cpu"])
    idx = [i for i in range(n) if st["cpu"][i] in ypos]
    if len(idx) > MAX_SEGMENTS:
        idx = sorted(sorted(idx, key=lambda i: st["start_s"][i] - st["end_s"][i])[:MAX_SEGMENTS])
    groups: dict[tuple[str, str | None], list[int]] = {}
    for i in idx:
        kind, label = st["kind"][i], st["label"][i]
        key = (kind, label if kind == "ctx" else None)
        groups.setdefault(key, []).append(i)
    what = {"stall": "stalled", "steal": "steal", "ctx": "", "spin": "spinning on", "rtas": "in an RTAS call"}
    out = []
    for key, (name, colour, off) in LANES.items():
        ids = groups.get(key)
        if not ids:
            continue
        xs: list[float | None] = []
        ys: list[float | None] = []
        custom: list[list[Any] | None] = []
        for i in ids:
            c, a, b = st["cpu"][i], round(st["start_s"][i], 6), round(st["end_s"][i], 6)
            y = ypos[c] + off
            cd = [c, float(f"{st['end_s'][i] - st['start_s'][i]:.6g}")]
            if key[0] in ("spin", "steal"):
                cd.append(ptext(st["label"][i]))
            xs += [a, b, None]
            ys += [y, y, None]
            custom += [cd, cd, None]
        width = max(2.0, row_px * (0.55 if off == 0.0 else 0.25))
        verb = what[key[0]] if key[0] != "ctx" else ptext(str(key[1]).replace("_", " "))
        label = " %{customdata[2]}" if key[0] in ("spin", "steal") else ""
        out.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": ptext(name),
                "x": xs,
                "y": ys,
                "customdata": custom,
                "hovertemplate": f"cpu %{{customdata[0]}}: {verb}{label} for %{{customdata[1]}} s"
                "<br>(this end at %{x:.6f} s)<extra></extra>",
                "xaxis": "x",
                "yaxis": "y",
                "connectgaps": False,
                "line": {"color": colour, "width": width},
                "legendgroup": key[0],
            }
        )
    return out


def _report_trace(reports: list[dict[str, Any]], ypos: dict[int, int]) -> dict[str, Any]:
    """Every report, one marker each, on the row of the CPU that printed it (else the first CPU
    it names that has a row; else above the rows)."""
    xs, ys, texts, symbols, colours = [], [], [], [], []
    for e in reports:
        cands = ([int(e["by"])] if e.get("by") is not None else []) + [int(c) for c in e.get("cpus") or []]
        row = next((ypos[c] for c in cands if c in ypos), -1)
        det = str(e.get("detector", ""))
        sym, colour = DETECTOR_STYLE.get(det, ("circle", "#333333"))
        cpus = ", ".join(str(c) for c in e.get("cpus") or [])
        head = f"{det} {e.get('kind', '')} at {float(e['time_s']):.6f} s"
        if cpus:
            head += f" — CPUs {cpus}"
        if e.get("cause"):
            head += f" — cause {e['cause']}"
        line = e.get("line") or ""
        xs.append(float(e["time_s"]))
        ys.append(row)
        texts.append(ptext(head, HOVER_MAX) + "<br>" + ptext(line, HOVER_MAX))
        symbols.append(sym)
        colours.append(colour)
    return {
        "type": "scatter",
        "mode": "markers",
        "name": f"detector reports ({len(xs)})",
        "x": xs,
        "y": ys,
        "text": texts,
        "hoverinfo": "text",
        "xaxis": "x",
        "yaxis": "y",
        "cliponaxis": False,
        "marker": {"symbol": symbols, "color": colours, "size": 12, "line": {"width": 1.5, "color": colours}},
        "meta": "reports",
    }


def _rolling(v: list[float | None], n: int) -> list[float | None]:
    """The mean of each value and the ``n - 1`` before it (a fluid fault's wait is booked when it
    starts, so one step alone can count more vCPUs waiting than there are)."""
    out: list[float | None] = []
    win: list[float] = []
    total = 0.0
    for x in v:
        y = 0.0 if x is None or math.isnan(x) else float(x)
        win.append(y)
        total += y
        if len(win) > n:
            total -= win.pop(0)
        out.append(total / len(win))
    return out


def _clean(v: list[Any]) -> list[Any]:
    return [None if x is None or (isinstance(x, float) and math.isnan(x)) else x for x in v]


def _series_traces(trace: RunTrace) -> list[dict[str, Any]]:
    """The transfer over time: sampled values (``hv``: holds until the next sample) and rates
    over each step (``vh``: the value of the step that ends at the sample)."""
    s = trace.series.to_pydict()
    t = s["time_s"]

    def line(col: str, name: str, y: str, colour: str, shape: str, markers: bool = False) -> dict[str, Any]:
        return {
            "type": "scatter",
            "mode": "lines+markers" if markers else "lines",
            "name": ptext(name),
            "x": t,
            "y": _clean(s[col]),
            "xaxis": "x",
            "yaxis": y,
            "line": {"color": colour, "width": 1.5, "shape": shape},
            "marker": {"size": 3},
            "legendgroup": "series",
        }

    return [
        line("missing_pages", "missing pages", "y3", "#2166ac", "hv"),
        line("link_utilisation", "link utilisation", "y4", "#1b7837", "vh"),
        line("fault_latency_p50_s", "fault latency p50", "y5", "#762a83", "vh", True),
        line("fault_latency_p99_s", "fault latency p99", "y5", "#c51b7d", "vh", True),
        line("demand_faults_per_s", "demand faults/s", "y6", "#b35806", "vh"),
    ]


def _phase_shapes(
    layout: dict[str, Any], phases: dict[str, dict[str, float]], end: float, view: tuple[float, float]
) -> None:
    """The VASI phases as bands, named in the middle of their visible part (when it is wide
    enough); the mobility flow's steps as dotted lines."""
    vasi = phases["vasi"]
    for a, b, name, colour in PHASE_BANDS:
        if a not in vasi:
            continue
        x0, x1 = vasi[a], vasi.get(b, end)
        layout["shapes"].append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": x0,
                "x1": x1,
                "y0": 0,
                "y1": 1,
                "fillcolor": colour,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        v0, v1 = max(x0, view[0]), min(x1, view[1])
        if v1 - v0 < 0.05 * (view[1] - view[0]):
            continue
        layout["annotations"].append(
            {
                "x": (v0 + v1) / 2,
                "y": 1.0,
                "xref": "x",
                "yref": "paper",
                "yanchor": "bottom",
                "yshift": 2,
                "text": ptext(name),
                "showarrow": False,
                "font": {"size": 11, "color": "#333"},
            }
        )
    steps: dict[float, list[str]] = {}  # the flow's steps at the same time share one label
    for name, t in sorted(phases["mobility"].items(), key=lambda kv: kv[1]):
        steps.setdefault(round(t, 6), []).append(name.replace("_", " "))
    for k, (t, names) in enumerate(steps.items()):
        label = ", ".join(names)
        layout["shapes"].append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": t,
                "x1": t,
                "y0": 0,
                "y1": 1,
                "line": {"width": 1, "dash": "dot", "color": "#555"},
            }
        )
        layout["annotations"].append(
            {
                "x": t,
                "y": 1,
                "xref": "x",
                "yref": "paper",
                "yanchor": "bottom",
                "yshift": 18 + 11 * (k % 3),
                "text": ptext(label),
                "showarrow": False,
                "font": {"size": 9, "color": "#555"},
                "hovertext": ptext(f"mobility flow at {t:.6f} s: {label}"),
            }
        )


def _figures_section(s: dict[str, Any]) -> Section:
    sec = Section("Figures")
    mig = s.get("migration") or {}
    rows: list[list[Any]] = [["outcome", s.get("outcome")]]
    crash = s.get("crash")
    if isinstance(crash, dict):
        for k, v in crash.items():
            rows.append([f"crash.{k}", v if not isinstance(v, (list, dict)) else str(v)])
    for key in (
        "precopy_s",
        "blackout_s",
        "postcopy_s",
        "total_s",
        "pages_missing_at_resume",
        "demand_faults",
        "link_busy_frac",
    ):
        if key in mig:
            rows.append([key, mig[key]])
    for group in ("fault_latency_s", "blocktime_s"):
        for k, v in (mig.get(group) or {}).items():
            rows.append([f"{group}.{k}", v])
    for k, v in (mig.get("vasi") or {}).items():
        rows.append([f"vasi.{k}", v])
    for k, v in (s.get("lpm") or {}).items():
        rows.append([f"mobility.{k}", v])
    sec.tables.append(Table("figures", "", ["figure (summary.json)", "value"], rows))
    return sec


def _reports_section(reports: list[dict[str, Any]]) -> Section:
    sec = Section(f"Detector reports ({len(reports)})")
    rows = [
        [
            float(e["time_s"]),
            e.get("detector"),
            e.get("kind"),
            ", ".join(str(c) for c in e.get("cpus") or []),
            e.get("by"),
            e.get("cause"),
            e.get("line"),
        ]
        for e in reports
    ]
    sec.tables.append(
        Table("reports", "", ["time (s)", "detector", "kind", "CPUs", "by", "cause", "log line"], rows)
    )
    return sec


def _log_section(log: list[str], trace: RunTrace | None) -> Section:
    sec = Section(f"Kernel log ({len(log):,} lines)")
    rows = [[i + 1, line] for i, line in enumerate(log[:MAX_LOG_ROWS])]
    note = f"The first {MAX_LOG_ROWS:,} lines; dmesg.log has them all." if len(log) > MAX_LOG_ROWS else ""
    sec.tables.append(Table("log", "", ["#", "dmesg.log"], rows, note))
    return sec

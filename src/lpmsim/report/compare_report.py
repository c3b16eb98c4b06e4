"""The report of a comparison or a sweep (``compare.json``, ``runs.parquet``).

A comparison: P(crash) and P(panic) per variant with their 95 % Wilson intervals, the mean
reports per detector, and per run (``runs.parquet``) the detection delays of injected bugs, the
p99 fault latency and the p99 blocktime per vCPU as distributions.  A sweep: the same figures by
each axis's value, one line per variant (and per value of the other axes), intervals as bands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lpmsim.report.html import Figure, Page, Section, Table, ptext

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#7f7f7f",
    "#bcbd22",
)
DETECTORS = ("hardlockup", "softlockup", "rcu_stall", "workqueue_lockup", "hung_task")
MAX_LINES = 40  # sweep: lines per chart


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def read_runs(d: Path) -> dict[str, list[Any]] | None:
    path = d / "runs.parquet"
    if not path.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        return dict(pq.read_table(path).to_pydict())
    except (OSError, ValueError):
        return None


def build_compare(doc: dict[str, Any], source: str, kind: str, runs: dict[str, list[Any]] | None) -> Page:
    from lpmsim.report.load import ReportError

    variants = doc.get("variants")
    if not isinstance(variants, list):
        raise ReportError(f"{source}: compare.json has no variants")
    title = f"lpmsim {kind}: {doc.get('scenario', '?')}"
    seeds = doc.get("seeds") or []
    sub = f"{len(variants)} variant(s) × {len(seeds)} seed(s); from {source}"
    if not doc.get("complete", True):
        sub += " — incomplete: not every planned run has finished"
    page = Page(title=title, kind=kind, subtitle=sub, main="p_outcome")
    if kind == "sweep":
        _sweep_sections(page, doc)
    else:
        _compare_sections(page, doc, runs)
    cmd = doc.get("command")
    if isinstance(cmd, list):
        page.sections.append(Section("Command", notes=[" ".join(str(c) for c in cmd)]))
    return page


def _interval(p: dict[str, Any] | None) -> tuple[float | None, float | None, float | None]:
    if not isinstance(p, dict) or p.get("p") is None:
        return None, None, None
    return float(p["p"]), float(p["ci95_low"]), float(p["ci95_high"])


def _compare_sections(page: Page, doc: dict[str, Any], runs: dict[str, list[Any]] | None) -> None:
    variants = doc["variants"]
    names = [ptext(v.get("name", "?")) for v in variants]
    sec = Section(
        "Crash and panic risk", notes=["Points: the share of runs; bars: the 95 % Wilson score interval."]
    )
    data = []
    for k, (key, label) in enumerate((("p_crash", "P(crash)"), ("p_panic", "P(panic)"))):
        ps, lo, hi = [], [], []
        for v in variants:
            p, a, b = _interval((v.get("results") or {}).get(key))
            ps.append(p)
            lo.append(None if p is None or a is None else p - a)
            hi.append(None if p is None or b is None else b - p)
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": label,
                "x": names,
                "y": ps,
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": hi,
                    "arrayminus": lo,
                    "thickness": 2,
                    "width": 8,
                },
                "marker": {"size": 11, "color": _colour(k + 1)},
                "offsetgroup": str(k),
            }
        )
    sec.figures.append(
        Figure(
            "p_outcome",
            data,
            {
                "height": 380,
                "yaxis": {"range": [-0.02, 1.02], "title": {"text": "probability"}},
                "scattermode": "group",
                "margin": {"t": 30},
            },
        )
    )
    page.sections.append(sec)

    rep = Section(
        "Reports per detector",
        notes=["Mean number of reports per run (summed over the runs of each variant, divided by them)."],
    )
    bars = []
    for k, det in enumerate(DETECTORS):
        means = [((v.get("results") or {}).get("reports_mean") or {}).get(det) for v in variants]
        bars.append(
            {"type": "bar", "name": ptext(det), "x": names, "y": means, "marker": {"color": _colour(k)}}
        )
    rep.figures.append(
        Figure(
            "reports",
            bars,
            {
                "height": 360,
                "barmode": "group",
                "yaxis": {"title": {"text": "reports per run"}},
                "margin": {"t": 30},
            },
        )
    )
    page.sections.append(rep)

    if runs is not None and "variant" in runs:
        dist = Section("Per run", columns=2, notes=["One point per run (runs.parquet), box: quartiles."])
        for col, title, fid in (
            ("detection_delays_s", "detection delay of injected bugs (s)", "detection_delay"),
            ("fault_latency_p99_s", "p99 demand-fault latency (s)", "fault_latency"),
            ("blocktime_per_vcpu_p99_s", "p99 blocktime per vCPU (s)", "blocktime"),
        ):
            if col not in runs:
                continue
            boxes = []
            for k, v in enumerate(variants):
                ys: list[float] = []
                for name, ok, val in zip(
                    runs["variant"], runs.get("ok", [True] * len(runs["variant"])), runs[col], strict=False
                ):
                    if name != v.get("name") or not ok or val is None:
                        continue
                    ys.extend(float(x) for x in (val if isinstance(val, list) else [val]) if x is not None)
                boxes.append(
                    {
                        "type": "box",
                        "name": ptext(v.get("name", "?")),
                        "y": ys,
                        "boxpoints": "all",
                        "jitter": 0.4,
                        "pointpos": 0,
                        "marker": {"color": _colour(k), "size": 4},
                    }
                )
            if any(b["y"] for b in boxes):
                dist.figures.append(
                    Figure(
                        fid,
                        boxes,
                        {
                            "height": 340,
                            "title": {"text": ptext(title), "font": {"size": 13}},
                            "showlegend": False,
                            "margin": {"t": 40},
                        },
                    )
                )
            else:
                dist.notes.append(f"{title}: no values (none of the runs has one).")
        page.sections.append(dist)

    cols = [
        "variant",
        "policy",
        "runs",
        "ok",
        "P(crash)",
        "95 % CI",
        "P(panic)",
        "95 % CI",
        "bugs detected",
        "detection delay median (s)",
        "fault latency p99 median (s)",
        "blocktime p99 median (s)",
        "post-copy mean (s)",
    ]
    rows = []
    for v in variants:
        r = v.get("results") or {}
        pc, pcl, pch = _interval(r.get("p_crash"))
        pp, ppl, pph = _interval(r.get("p_panic"))
        bd = r.get("bugs_detected") or {}
        rows.append(
            [
                v.get("name"),
                v.get("policy"),
                r.get("runs"),
                r.get("ok"),
                pc,
                None if pcl is None else f"{pcl:.3f}–{pch:.3f}",
                pp,
                None if ppl is None else f"{ppl:.3f}–{pph:.3f}",
                None if not bd.get("n") else f"{bd.get('k')}/{bd.get('n')}",
                r.get("detection_delay_median_s"),
                r.get("fault_latency_p99_s_median"),
                r.get("blocktime_per_vcpu_p99_s_median"),
                r.get("postcopy_s_mean"),
            ]
        )
    page.sections.append(Section("Figures (compare.json)", tables=[Table("variants", "", cols, rows)]))
    _failures(page, doc)


def _failures(page: Page, doc: dict[str, Any]) -> None:
    fails = doc.get("failures") or []
    if fails:
        rows = [[f.get("variant"), f.get("seed"), str(f.get("point", "")), f.get("error")] for f in fails]
        page.sections.append(
            Section(
                f"Failed runs ({len(fails)})",
                tables=[Table("failures", "", ["variant", "seed", "point", "error"], rows)],
            )
        )


SWEEP_METRICS = (
    ("p_crash", "P(crash)", True),
    ("p_panic", "P(panic)", True),
    ("bugs_detected", "bugs detected (share)", True),
    ("reports_total", "reports per run, all detectors (mean)", False),
    ("detection_delay_median_s", "detection delay median (s)", False),
    ("fault_latency_p99_s_median", "fault latency p99, median over runs (s)", False),
    ("blocktime_per_vcpu_p99_s_median", "blocktime per vCPU p99, median (s)", False),
    ("postcopy_s_mean", "post-copy mean (s)", False),
)


def _sweep_sections(page: Page, doc: dict[str, Any]) -> None:
    axes = [a for a in doc.get("axes") or [] if isinstance(a, dict) and "field" in a]
    points = doc.get("points") or []
    variants = [str(v.get("name")) for v in doc.get("variants") or []]
    if not axes or not points:
        page.sections.append(Section("Sweep", notes=["The sweep has no points yet."]))
        return
    first = True
    for axis in axes:
        field = str(axis["field"])
        others = [str(a["field"]) for a in axes if a["field"] != field]
        sec = Section(
            f"By {field}",
            columns=2,
            notes=[
                "One line per variant"
                + (f" and value of {', '.join(others)}" if others else "")
                + "; bands: the 95 % Wilson score interval."
            ],
        )
        for metric, label, has_ci in SWEEP_METRICS:
            lines: dict[tuple[str, str], list[tuple[Any, float | None, float | None, float | None]]] = {}
            for pt in points:
                where = pt.get("point") or {}
                rest = ", ".join(f"{o}={where.get(o)}" for o in others)
                for pv in pt.get("variants") or []:
                    res = pv.get("results") or {}
                    val = res.get(metric)
                    if metric == "reports_total" and isinstance(res.get("reports_mean"), dict):
                        val = sum(float(x) for x in res["reports_mean"].values() if x is not None)
                    if has_ci:
                        y, lo, hi = _interval(val)
                    else:
                        y, lo, hi = (None if val is None else float(val)), None, None
                    lines.setdefault((str(pv.get("name")), rest), []).append((where.get(field), y, lo, hi))
            if all(y is None for pts in lines.values() for _, y, _, _ in pts):
                continue
            data = []
            for k, ((vname, rest), pts) in enumerate(list(lines.items())[:MAX_LINES]):
                colour = _colour(variants.index(vname) if vname in variants else k)
                xs = [p[0] for p in pts]
                name = vname + (f" ({rest})" if rest else "")
                dash = ("solid", "dash", "dot", "dashdot", "longdash")[(k // max(len(variants), 1)) % 5]
                if has_ci:
                    data.append(
                        {
                            "type": "scatter",
                            "mode": "lines",
                            "x": xs + xs[::-1],
                            "y": [p[3] for p in pts] + [p[2] for p in pts][::-1],
                            "fill": "toself",
                            "fillcolor": _rgba(colour, 0.15),
                            "line": {"width": 0},
                            "hoverinfo": "skip",
                            "showlegend": False,
                            "legendgroup": ptext(name),
                        }
                    )
                data.append(
                    {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "name": ptext(name),
                        "x": xs,
                        "y": [p[1] for p in pts],
                        "line": {"color": colour, "dash": dash},
                        "legendgroup": ptext(name),
                    }
                )
            fid = "p_outcome" if first else f"sweep_{len(page.sections)}_{metric}"
            first = False
            layout: dict[str, Any] = {
                "height": 420,
                "title": {"text": ptext(label), "font": {"size": 13}},
                "xaxis": {"title": {"text": ptext(field)}},
                "legend": {"orientation": "h", "y": -0.25, "yanchor": "top", "font": {"size": 10}},
                "margin": {"t": 40},
            }
            if has_ci:
                layout["yaxis"] = {"range": [-0.02, 1.02]}
            sec.figures.append(Figure(fid, data, layout))
        page.sections.append(sec)
    rows = []
    for pt in points:
        where = ", ".join(f"{k}={v}" for k, v in (pt.get("point") or {}).items())
        for pv in pt.get("variants") or []:
            r = pv.get("results") or {}
            pc, pcl, pch = _interval(r.get("p_crash"))
            pp, _, _ = _interval(r.get("p_panic"))
            rows.append(
                [
                    where,
                    pv.get("name"),
                    r.get("ok"),
                    pc,
                    None if pcl is None else f"{pcl:.3f}–{pch:.3f}",
                    pp,
                    r.get("fault_latency_p99_s_median"),
                    r.get("postcopy_s_mean"),
                ]
            )
    page.sections.append(
        Section(
            "Figures (compare.json)",
            tables=[
                Table(
                    "points",
                    "",
                    [
                        "point",
                        "variant",
                        "ok runs",
                        "P(crash)",
                        "95 % CI",
                        "P(panic)",
                        "fault latency p99 median (s)",
                        "post-copy mean (s)",
                    ],
                    rows,
                )
            ],
        )
    )
    _failures(page, doc)

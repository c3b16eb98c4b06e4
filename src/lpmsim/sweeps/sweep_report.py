"""The terminal view of a sweep: the comparison's tables with a row per (axis point, variant), and
``--by FIELD``: one metric pivoted by an axis (e.g. P(crash) by vCPUs, a row per policy and per
value of the other axes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from lpmsim.outputs.text import esc as escape
from lpmsim.sweeps.report import (
    DASH,
    Entry,
    _mean,
    _table,
    migration_table,
    outcomes_table,
    proportion,
    render_failures,
    reports_table,
)
from lpmsim.sweeps.sweep import SweepResult

PROPORTIONS = ("p_crash", "p_panic", "bugs_detected")
NUMBERS = (
    "detection_delay_median_s",
    "fault_latency_p99_s_median",
    "blocktime_per_vcpu_p99_s_median",
    "postcopy_s_mean",
    "throughput_loss_frac_mean",
    "demand_faults_mean",
    "hv_stall_annotations_mean",
    "wall_s_mean",
)
METRICS = (*PROPORTIONS, *NUMBERS)
"""What ``--metric`` may name: a proportion (shown with its interval) or a single figure."""


class PivotError(ValueError):
    """A ``--by``/``--metric`` that the sweep cannot pivot (one line)."""


def _value(v: Any) -> str:
    return str(v)


def short_labels(fields: list[str]) -> list[str]:
    """Each axis field by its last component (``vcpus``), or whole where two would look alike."""
    last = [f.rsplit(".", 1)[-1] for f in fields]
    return [s if last.count(s) == 1 else f for s, f in zip(last, fields, strict=True)]


def _entries(res: SweepResult) -> list[Entry]:
    return [
        ([*(_value(v) for _, v in p), name], res.aggregate_at(p, name))
        for p in res.points
        for name in res.variant_names
    ]


def _cell(agg: Mapping[str, Any], metric: str) -> str:
    if metric in PROPORTIONS:
        return proportion(agg[metric])
    x = agg[metric]
    if x is None:
        return DASH
    return _mean(float(x), 3)


def pivot_table(res: SweepResult, by: str, metric: str = "p_crash") -> Table:
    """``metric`` with a column per value of the axis ``by`` and a row per variant and per point of
    the other axes."""
    fields = [f for f, _ in res.axes]
    if by not in fields:
        have = ", ".join(fields) if fields else "none"
        raise PivotError(f"--by {by}: not an axis of this sweep (axes: {have})")
    if metric not in METRICS:
        raise PivotError(f"--metric {metric}: expected one of {', '.join(METRICS)}")
    values = dict(res.axes)[by]
    others = [f for f in fields if f != by]
    unit = " (in %, 95 % Wilson interval below)" if metric in PROPORTIONS else ""
    title = f"{metric} by {by}{unit}"
    t = _table(title)
    t.min_width = len(title)  # a narrow pivot would wrap the metric's name
    labels = dict(zip(fields, short_labels(fields), strict=True))
    for f in [*(labels[o] for o in others), "variant"]:
        t.add_column(escape(f), overflow="fold")
    for v in values:
        t.add_column(escape(f"{labels[by]}={_value(v)}"), justify="right")
    seen: list[tuple[Any, ...]] = []
    for p in res.points:
        rest = tuple((f, v) for f, v in p if f != by)
        if rest in seen:
            continue
        seen.append(rest)
        for name in res.variant_names:
            cells = []
            for v in values:
                point = tuple((f, v if f == by else dict(rest)[f]) for f in fields)
                cells.append(_cell(res.aggregate_at(point, name), metric))
            t.add_row(*(escape(_value(x)) for _, x in rest), escape(name), *cells)
    return t


def render_sweep(res: SweepResult, console: Console, by: str | None = None, metric: str = "p_crash") -> None:
    """Print the header, the tables (or the pivot with ``by``) and the failed runs."""
    seeds = res.seeds
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}–{seeds[-1]}"
    axes = "".join(f"{f} ({len(v)}) × " for f, v in res.axes)
    state = "" if res.complete else f"; {len(res.results)} of {res.planned} runs in the store"
    console.print(
        f"[bold]{escape(res.name)}[/]: {escape(axes)}{len(res.variant_names)} variant(s) × "
        f"{len(seeds)} run(s), {seed_text}{state}"
    )
    for v in res.description["variants"]:
        console.print(f"  [bold]{escape(str(v['name']))}[/]: {escape(str(v['variant']).partition('=')[2])}")
    if by is not None:
        console.print(pivot_table(res, by, metric))
    else:
        labels = [*short_labels([f for f, _ in res.axes]), "variant"]
        entries = _entries(res)
        console.print(outcomes_table(labels, entries))
        console.print(reports_table(labels, entries))
        console.print(migration_table(labels, entries))
    render_failures(res.failures, console)

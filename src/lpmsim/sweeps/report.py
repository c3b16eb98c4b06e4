"""The terminal view of a comparison: three tables with a row per variant, then the failed runs.

The table builders take labelled entries, so that a sweep prints the same tables with a row per
(axis point, variant) (``lpmsim.sweeps.sweep_report``).

The tables fit 120 columns for any number of variants: outcomes (P(panic), P(crash) with their
95 % Wilson intervals, bugs detected), lockup reports per run, and what the migration did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from lpmsim.kernel.model import DETECTORS
from lpmsim.outputs.text import esc as escape
from lpmsim.sweeps.compare import CompareResult
from lpmsim.sweeps.plan import point_text
from lpmsim.sweeps.rows import RunResult

DETECTOR_LABELS = {
    "hardlockup": "hard\nLOCKUP",
    "softlockup": "soft\nlockup",
    "rcu_stall": "RCU\nstall",
    "workqueue_lockup": "wq\nlockup",
    "hung_task": "hung\ntask",
}
DASH = "–"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def proportion(p: Mapping[str, Any]) -> str:
    """``p (k/n)`` over ``[lo–hi]``, in percent (two lines), or a dash when there were no trials."""
    if not p.get("n"):
        return DASH
    return f"{_pct(p['p'])} ({p['k']}/{p['n']})\n[{_pct(p['ci95_low'])}–{_pct(p['ci95_high'])}]"


def _mean(x: float | None, digits: int = 2) -> str:
    return DASH if x is None else f"{x:,.{digits}f}"


def _seconds(x: float | None) -> str:
    if x is None:
        return DASH
    if x < 1.0:
        return f"{x * 1e3:,.1f} ms"
    return f"{x:,.2f} s"


def _frac(x: float | None) -> str:
    return DASH if x is None else f"{100 * x:.1f} %"


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, title_style="bold")


def _reports_cell(agg: Mapping[str, Any], det: str) -> str:
    total = _mean(agg["reports_mean"][det])
    mig, bug = agg.get("reports_migration_mean"), agg.get("reports_bug_mean")
    if mig is None and bug is None:
        return total
    m = _mean(mig.get(det), 1) if mig else DASH
    b = _mean(bug.get(det), 1) if bug else DASH
    return f"{total}\n{m}/{b}"


Entry = tuple[Sequence[str], Mapping[str, Any]]
"""One row of a table: its label cells (the variant; in a sweep, the axis values first) and the
figures of ``aggregate_variant``."""


def _labels(t: Table, labels: Sequence[str]) -> None:
    for name in labels:
        t.add_column(escape(name), overflow="fold")


def outcomes_table(labels: Sequence[str], entries: Sequence[Entry]) -> Table:
    t = _table("Outcomes (in %, 95 % Wilson interval below)")
    _labels(t, labels)
    t.add_column("runs", justify="right")
    t.add_column("survived", justify="right")
    t.add_column("P(panic)", justify="right")
    t.add_column("P(crash)", justify="right")
    t.add_column("bugs\ndetected", justify="right")
    t.add_column("median\ndelay", justify="right")
    for cells, a in entries:
        runs = str(a["ok"]) if not a["failed"] else f"{a['ok']}\n+{a['failed']} failed"
        t.add_row(
            *(escape(c) for c in cells),
            runs,
            str(a["outcomes"]["survived"]),
            proportion(a["p_panic"]),
            proportion(a["p_crash"]),
            proportion(a["bugs_detected"]),
            _seconds(a["detection_delay_median_s"]),
        )
    return t


def reports_table(labels: Sequence[str], entries: Sequence[Entry]) -> Table:
    split = any(a.get("reports_migration_mean") or a.get("reports_bug_mean") for _, a in entries)
    title = "Lockup reports per run (mean)" + (
        "; below: caused by migration / by injected bugs" if split else ""
    )
    t = _table(title)
    _labels(t, labels)
    for d in DETECTORS:
        t.add_column(DETECTOR_LABELS.get(d, d), justify="right")
    t.add_column("NMI IPI\nsent", justify="right")
    t.add_column("NMI IPI\nno reply", justify="right")
    annotated = any(a.get("hv_stall_annotations_mean") for _, a in entries)
    if annotated:
        t.add_column("hv stall\nannotated", justify="right")
    for cells, a in entries:
        nmi = a["nmi_ipi_mean"]
        extra = [_mean(a.get("hv_stall_annotations_mean"))] if annotated else []
        t.add_row(
            *(escape(c) for c in cells),
            *(_reports_cell(a, d) for d in DETECTORS),
            _mean(nmi["sent"]),
            _mean(nmi["timed_out"]),
            *extra,
        )
    return t


def migration_table(labels: Sequence[str], entries: Sequence[Entry]) -> Table:
    t = _table("Migration (p99: median over runs of each run's p99; others: mean over runs)")
    _labels(t, labels)
    t.add_column("fault latency\np99", justify="right")
    t.add_column("per-vCPU\nblocktime p99", justify="right")
    t.add_column("post-copy", justify="right")
    t.add_column("throughput\nlost", justify="right")
    t.add_column("demand\nfaults", justify="right")
    for cells, a in entries:
        t.add_row(
            *(escape(c) for c in cells),
            _seconds(a["fault_latency_p99_s_median"]),
            _seconds(a["blocktime_per_vcpu_p99_s_median"]),
            _seconds(a["postcopy_s_mean"]),
            _frac(a["throughput_loss_frac_mean"]),
            _mean(a["demand_faults_mean"], 0),
        )
    return t


def render(res: CompareResult, console: Console) -> None:
    """Print the tables and the failed runs of ``res``."""
    seeds = res.seeds
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}–{seeds[-1]}"
    state = "" if not res.interrupted else f", interrupted after {len(res.results)} of {res.planned} runs"
    console.print(
        f"[bold]{escape(res.name)}[/]: {len(res.variants)} variant(s) × {len(seeds)} run(s), {seed_text} "
        f"(the same for every variant){state}; {res.wall_s:,.1f} s with {res.jobs} process(es)"
    )
    for v in res.variants:
        mit = res.scenarios[v.name].mitigation
        items = [mit.policy, *(f"{k}={val}" for k, val in v.options.items()), *v.overrides]
        console.print(f"  [bold]{escape(v.name)}[/]: {escape(', '.join(items))}")
    entries: list[Entry] = [([v.name], res.aggregates[v.name]) for v in res.variants]
    console.print(outcomes_table(["variant"], entries))
    console.print(reports_table(["variant"], entries))
    console.print(migration_table(["variant"], entries))
    render_failures(res.failures, console)


def render_failures(failures: Sequence[RunResult], console: Console) -> None:
    if not failures:
        return
    console.print(f"[bold red]{len(failures)} run(s) failed[/] (not counted above):")
    for r in failures:
        at = f" at {point_text(r.point)}" if r.point else ""
        console.print(f"  {r.variant}{at} seed {r.seed}: {r.error}", markup=False)

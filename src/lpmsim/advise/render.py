"""The terminal view of an advice: the facts and assumptions, one row per candidate, the
recommendation, its sensitivity, the fit (from a log) and what to deploy.

Every string that comes from outside (a kernel release read from a partition, a log's path) is
printed as text, never as markup: cells are ``rich.text.Text`` objects and lines use ``plain``.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lpmsim.advise.results import Advice, Detection, Fit, Scored
from lpmsim.kernel.model import DETECTORS
from lpmsim.outputs.text import plain, print_sized
from lpmsim.sweeps.report import DASH, DETECTOR_LABELS, proportion


def _detection(d: Detection | None) -> str:
    if d is None:
        return DASH
    if d.detected.n == 0:
        return f"– (down first in {d.went_down}/{d.runs})" if d.went_down else DASH
    text = f"{d.detected.k}/{d.detected.n}"
    if d.delay_median_s is not None:
        text += f"\n{d.delay_median_s:,.1f} s"
    if d.missed:
        text += f"\n{d.missed} missed" + (f" ({d.went_down} down)" if d.went_down else "")
    return text


def _reports(s: Scored) -> list[str]:
    return [DASH if (x := s.reports_mean.get(d)) is None else f"{x:,.2f}" for d in DETECTORS]


def candidates_table(advice: Advice) -> Table:
    t = Table(box=box.SIMPLE_HEAD, title="Candidates (P in %, 95 % Wilson interval)", title_justify="left")
    t.add_column("candidate")
    t.add_column("runs", justify="right")
    t.add_column("P(crash)", justify="right")
    t.add_column("P(panic)", justify="right")
    for d in DETECTORS:
        t.add_column(DETECTOR_LABELS[d], justify="right")
    t.add_column("real lockup:\ndetected,\nmedian delay", justify="right")
    for s in advice.race.scored:
        name = s.name + (" ◀" if s.name == advice.recommendation else "")
        note = f"\nout after {s.left_race_after} runs" if s.left_race_after is not None else ""
        cells = [
            Text(name + note, style="bold" if s.name == advice.recommendation else ""),
            Text(str(s.runs)),
            Text(proportion(s.p_crash.as_dict())),
            Text(proportion(s.p_panic.as_dict())),
            *(Text(x) for x in _reports(s)),
            Text(_detection(s.detection)),
        ]
        t.add_row(*cells)
    return t


def _kernel(advice: Advice) -> str:
    f = advice.facts
    return f.kernel_label


def _facts_line(advice: Advice) -> Text:
    f = advice.facts
    return plain(
        f"Partition: {f.vcpus} vCPUs, {f.memory_gib:g} GiB, kernel {_kernel(advice)}, {f.distro} defaults; "
        f"facts from {f.source}"
    )


def _assumptions(advice: Advice) -> list[Text]:
    a = advice.assumptions
    f = advice.facts
    bug = a["injected_lockup"]
    lo, hi = bug["window_after_resume_s"]
    return [
        plain(
            f"Assumed: link {f.link_gbps:.3g} Gb/s effective, workload {f.workload}; risk counted over the first "
            f"{a['horizon_after_resume_s']:g} s after resume (reports per run over the same window)."
        ),
        plain(
            f"Real lockup: one CPU spinning with interrupts hard-disabled ({bug['kind']}), starting "
            f"{lo:g}-{hi:g} s after resume, {bug['runs']} run(s) per candidate."
        ),
    ]


def fit_lines(fit: Fit) -> list[Text]:
    out = [
        plain(
            f"Fit to {fit.log}: {fit.accepted} of {fit.runs} simulated runs reproduced the log's pattern "
            f"within tolerance {fit.tolerance:g}",
            "bold",
        ),
        plain(f"  the log's pattern: {fit.observed}"),
    ]
    for p in fit.parameters:
        if p.low is None or p.high is None:
            out.append(plain(f"  {p.field}: nothing accepted (prior {p.prior[0]:g}-{p.prior[1]:g})"))
        else:
            out.append(
                plain(
                    f"  {p.field}: accepted {p.low:.3g}-{p.high:.3g} (median {p.median:.3g}) of prior "
                    f"{p.prior[0]:.3g}-{p.prior[1]:.3g}"
                )
            )
    return out


def render(advice: Advice, console: Console) -> None:
    """Print the advice."""
    if advice.fit is not None:
        for line in fit_lines(advice.fit):
            console.print(line, soft_wrap=True)
        console.print()
    console.print(_facts_line(advice), soft_wrap=True)
    for line in _assumptions(advice):
        console.print(line, soft_wrap=True)
    print_sized(console, candidates_table(advice))
    console.print(plain(f"Recommendation: {advice.recommendation}", "bold green"), soft_wrap=True)
    console.print(plain(f"  why: {advice.choice.reason}"), soft_wrap=True)
    cand = next(c for c in advice.candidates if c.name == advice.recommendation)
    console.print(plain(f"  what: {cand.summary}"), soft_wrap=True)
    if advice.sensitivity:
        parts = [f"{p.label}: {p.choice.name}" for p in advice.sensitivity]
        verdict = (
            "the same recommendation"
            if advice.robust
            else "the recommendation CHANGES — check the assumption"
        )
        console.print(plain(f"Sensitivity: {'; '.join(parts)} ({verdict})"), soft_wrap=True)
    console.print()
    console.print(plain("Deploy:", "bold"), soft_wrap=True)
    console.print(plain(advice.deploy_text.rstrip("\n")), soft_wrap=True)
    if advice.interrupted:
        console.print(
            plain("interrupted: the figures above cover the runs that finished", "bold red"), soft_wrap=True
        )

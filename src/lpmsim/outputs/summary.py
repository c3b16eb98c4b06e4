"""Writing ``summary.json`` and rendering the terminal summary."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lpmsim.outputs.files import write_atomic
from lpmsim.outputs.story import tell
from lpmsim.outputs.text import esc, plain, print_sized


def dumps(summary: dict[str, Any]) -> str:
    """The canonical JSON text: same summary, same bytes."""
    return json.dumps(summary, indent=2, sort_keys=False, allow_nan=False) + "\n"


def write_summary(summary: dict[str, Any], out_dir: Path) -> Path:
    """Write ``out_dir/summary.json`` atomically (a crash never leaves half a file), mode per umask."""
    return write_atomic(out_dir / "summary.json", dumps(summary))


def write_kernel_log(lines: list[str], out_dir: Path) -> Path:
    """Write ``out_dir/dmesg.log`` (the kernel log, one line each) atomically, mode per umask."""
    return write_atomic(out_dir / "dmesg.log", "".join(line + "\n" for line in lines))


def _ms(x: float) -> str:
    return f"{x * 1e3:,.3f} ms"


def _s(x: float) -> str:
    return f"{x:,.3f} s"


def render(summary: dict[str, Any], console: Console, source: Sequence[str] = ()) -> None:
    """The terminal summary: the table, then the story of the run and one next command
    (lpmsim.outputs.story).  Names and descriptions from the scenario are printed as text."""
    sc = summary["scenario"]
    m = summary["migration"]
    part, pf = sc["partition"], sc["platform"]
    title = (
        f"{esc(sc['name'])}: {part['vcpus']:,} vCPUs, {part['memory_gib']:g} GiB, {pf['link_gbps']:g} Gb/s "
        f"{pf['discipline']}, {pf['page_kib']} KiB pages, {sc['sim']['mode']} mode, seed {summary['seed']}"
    )
    caption = esc(sc.get("description") or "")
    t = Table(
        title=title, caption=caption or None, show_header=False, title_justify="left", caption_justify="left"
    )
    t.add_column("what", no_wrap=True)
    t.add_column("value", justify="right")
    if not m.get("enabled"):
        t.add_row("migration", "disabled")
        _kernel_rows(t, summary)
    else:
        _migration_rows(t, summary)
        _kernel_rows(t, summary)
        t.add_row("wall time", f"{summary['wall_s']:.2f} s")
    print_sized(console, t, max(Text.from_markup(title).plain, caption, key=len))
    _print_story(summary, console, source)


def _print_story(summary: dict[str, Any], console: Console, source: Sequence[str]) -> None:
    story = tell(summary, source)
    console.print()
    console.print(plain(" ".join(story.sentences)), soft_wrap=not console.is_terminal)
    console.print()
    console.print(
        Text("next: ", style="bold") + plain(f"{story.next_why}:"), soft_wrap=not console.is_terminal
    )
    console.print(plain(f"  {story.next_command}"), soft_wrap=True)  # whole, to copy


def _migration_rows(t: Table, summary: dict[str, Any]) -> None:
    m = summary["migration"]
    t.add_row(
        "pre-copy", f"{_s(m['precopy_s'])} in {m['precopy_rounds']} rounds ({m['precopy_stop_reason']})"
    )
    t.add_row("blackout", _s(m["blackout_s"]))
    if m.get("resumed", True):
        missing = f"{m['pages_missing_at_resume']:,} of {m['pages_total']:,} ({m['missing_fraction_at_resume']:.2%})"
    else:
        missing = "(not resumed)"
    t.add_row("missing at resume", missing)
    done = "" if m["completed"] else " (not completed by the end of the run)"
    t.add_row("post-copy", _s(m["postcopy_s"]) + done)
    t.add_row("total", _s(m["total_s"]))
    t.add_row("link busy after resume", f"{m['link_busy_frac']:.1%}")
    t.add_row("demand faults / requests", f"{m['demand_faults']:,} / {m['demand_requests']:,}")
    t.add_row(
        "pages pushed / demanded / prefetched",
        f"{m['pages_pushed']:,} / {m['pages_demanded']:,} / {m['pages_prefetched']:,}",
    )
    fl = m["fault_latency_s"]
    t.add_row("fault latency p50 / p99 / max", f"{_ms(fl['p50'])} / {_ms(fl['p99'])} / {_ms(fl['max'])}")
    bt = m["blocktime_s"]
    t.add_row("blocktime total / per-vCPU max", f"{_s(bt['total'])} / {_s(bt['per_vcpu_max'])}")
    g = summary.get("guest")
    if g:
        pv = g["blocktime_per_vcpu_s"]
        t.add_row(
            "per-vCPU blocktime p50 / p90 / p99", f"{_s(pv['p50'])} / {_s(pv['p90'])} / {_s(pv['p99'])}"
        )
        t.add_row("throughput lost after resume", f"{g['throughput_loss_frac']:.1%}")
        t.add_row("longest stall / interrupts-off run", f"{_s(g['max_stall_s'])} / {_s(g['max_irqs_off_s'])}")
        t.add_row("longest spin / most spinners", f"{_s(g['max_spin_s'])} / {g['max_concurrent_spinners']}")


def _kernel_rows(t: Table, summary: dict[str, Any]) -> None:
    """Outcome and the reports per lockup detector (kernel model)."""
    if "outcome" not in summary:
        return
    crash = summary.get("crash")
    outcome = summary["outcome"]
    if crash:
        outcome += f" ({crash['cause']} on CPU {crash['cpu']} at {_s(crash['time_s'])})"
    t.add_row("outcome", outcome)
    for name, w in summary.get("watchdogs", {}).items():
        if name == "nmi_ipi":
            t.add_row(
                "NMI IPIs sent / timed out / unrecoverable",
                f"{w['sent']} / {w['timed_out']} / {w['unrecoverable']}",
            )
            continue
        first = "" if w["first_s"] is None else f", first at {_s(w['first_s'])}"
        t.add_row(f"{name} reports", f"{w['reports']:,} on {len(w['cpus']):,} CPUs{first}")
    _bug_rows(t, summary)


def _bug_rows(t: Table, summary: dict[str, Any]) -> None:
    """One row per injected bug (lpmsim.bugs): who reported it first and how fast, or missed."""
    bugs = summary.get("bugs") or []
    if not bugs:
        return
    rep = summary.get("reports", {})
    n_mig = sum(rep.get("migration", {}).values())
    n_bug = sum(rep.get("bug", {}).values())
    t.add_row("reports from migration / bugs", f"{n_mig:,} / {n_bug:,}")
    for b in bugs:
        cpus = ",".join(str(c) for c in b["cpus"])
        what = f"bug {b['index']}: {b['kind']} on CPU {cpus}"
        if b["status"] == "detected":
            t.add_row(what, f"{b['detected_by']} after {_s(b['delay_s'])}")
        elif b["status"] == "missed":
            t.add_row(what, "missed" + (" (the partition died first)" if b.get("died_first") else ""))
        else:
            t.add_row(what, "not started")

"""Round trip (issue 6 with issue 4): the kernel log the simulator writes triages to exactly the
events the simulator recorded in summary.json — count, type, CPUs and times.

The conventions of the two sides, where they differ:

* "became unstuck" lines are not events for triage (INDEX.toml of the triage corpus), so the
  simulator's ``unstuck`` events are left out;
* the target of an NMI IPI prints ``CPU %d Hard LOCKUP``: triage types it ``hardlockup``, the
  simulator records it as ``nmi_ipi``/``ipi-report``;
* a hung-task or panic headline names no CPU, so only their type and time are compared;
* the annotate policy's "memory access stalled N s in the hypervisor" lines are ``hv_stall`` on both
  sides (tests/policies/test_dtl.py round-trips them);
* the end of the log: the simulator records one ``panic`` event per crash, triage one event per
  headline (``Oops: ...`` and ``Kernel panic - ...`` both), so for crashes we check that one of
  triage's terminal events is at the simulator's crash time.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from lpmsim.config.loader import build_scenario, load_scenario
from lpmsim.runner import simulate, summarise
from lpmsim.triage.analyze import triage_text

from .cases import CASES, Case

TYPE = {
    "hardlockup": "hardlockup",
    "softlockup": "softlockup",
    "rcu_stall": "rcu_stall",
    "workqueue_lockup": "workqueue_lockup",
    "hung_task": "hung_task",
    "panic": "panic",
    "hv_stall": "hv_stall",  # the annotate policy's lines (docs/policies.md)
}


def _sim_type(e: dict[str, Any]) -> str | None:
    if e["kind"] == "unstuck":
        return None
    if e["detector"] == "nmi_ipi":
        # The target of an NMI IPI prints "CPU %d Hard LOCKUP": a hard-lockup line in the log.
        return "hardlockup" if e["kind"] == "ipi-report" else None
    return TYPE.get(e["detector"])


NO_CPU = {"panic", "hung_task"}
TERMINAL = {"panic", "oops", "unrecoverable_system_reset"}


def _sim_events(summary: dict[str, Any]) -> list[tuple[str, list[int], float]]:
    out = []
    for e in summary["events"]:
        t = _sim_type(e)
        if t is not None and t not in TERMINAL:
            out.append((t, [] if t in NO_CPU else sorted(e["cpus"]), float(e["time_s"])))
    return out


def _triaged(lines: list[str]) -> tuple[list[tuple[str, list[int], float]], list[float]]:
    tri = triage_text("\n".join(lines) + "\n")
    out = []
    terminal = []
    for e in tri.events:
        t = float(e.time_s) if e.time_s is not None else math.nan
        if e.type in TERMINAL:
            terminal.append(t)
        elif e.type in TYPE.values():
            out.append((e.type, [] if e.type in NO_CPU else sorted(e.cpus or []), t))
    return out, terminal


def _check(summary: dict[str, Any], lines: list[str]) -> None:
    sim = _sim_events(summary)
    tri, terminal = _triaged(lines)
    crash = summary.get("crash")
    if summary["outcome"] == "survived":
        assert terminal == []
    else:
        assert crash is not None and terminal, "\n".join(lines[-20:])
        assert any(abs(t - crash["time_s"]) <= 1e-6 for t in terminal), (terminal, crash)
    assert [(t, c) for t, c, _ in tri] == [(t, c) for t, c, _ in sim], "\n".join(lines[:80])
    for (_, _, a), (_, _, b) in zip(sim, tri, strict=True):
        assert b == pytest.approx(a, abs=1e-6)  # printk prints microseconds


ROUND_TRIP = [c for c in CASES if not c.calls]


@pytest.mark.parametrize("case", ROUND_TRIP, ids=[c.id for c in ROUND_TRIP])
def test_scripted_case_round_trips(case: Case) -> None:
    st = simulate(build_scenario(case.data()))
    assert st.kernel is not None
    _check(summarise(st, 0.0), st.kernel.model.log.lines())


SLOW_LINK = ["migration.resume_missing_fraction=0.5", "sim.max_time_s=3000"]


@pytest.mark.parametrize(
    ("preset", "seed", "overrides", "events"),
    [
        # A 50 Mb/s link with half the memory missing: an RCU stall report, survives.
        ("small", 1, ["platform.link_gbps=0.05", *SLOW_LINK], 1),
        # 20 Mb/s, fluid: the post-resume RTAS call (stalled at each fault, hard-disabled between)
        # gives an RCU stall, an SMP hard-lockup report, the NMI IPI taken between two faults,
        # "became unstuck" (before fluid published episodes one stall at a time: soft lockups and a
        # dump-request panic, an artefact; docs/model/agreement.md, fix 6).
        (
            "small",
            1,
            [
                "platform.link_gbps=0.02",
                "migration.resume_missing_fraction=0.3",
                "sim.max_time_s=3000",
                "sim.mode=fluid",
            ],
            3,
        ),
        # A pre-v6.0 kernel: the NMI IPI lands in RTAS with MSR[RI]=0, an unrecoverable system reset.
        ("small", 1, ["platform.link_gbps=0.1", "kernel.version=pre-v6.0", *SLOW_LINK], 2),
        # The default partition on a 2 Gb/s link with a pre-v6.0 kernel (no factor): post-resume RTAS
        # calls trip the SMP checker and the NMI IPI crashes the partition.
        ("default", 1, ["platform.link_gbps=2", "kernel.version=pre-v6.0", "sim.max_time_s=5000"], 2),
    ],
)
def test_emergent_run_round_trips(preset: str, seed: int, overrides: list[str], events: int) -> None:
    st = simulate(load_scenario(preset=preset, overrides=overrides, seed=seed))
    assert st.kernel is not None
    summary = summarise(st, 0.0)
    assert len(_sim_events(summary)) >= events
    _check(summary, st.kernel.model.log.lines())

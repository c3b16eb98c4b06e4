"""RCU stall details that depend on the kernel version, selected here directly through the
``Kernel`` properties (``rcu_reset``, ``rcu_trailer_ncpus``), and the timing of the stack dumps.

Hand computations (timeout 21 s = 2100 jiffies, HZ 100, 8 vCPUs: ``jiffies_till_next_fqs`` = 1):

* audit example: CPU 3 preempt-off from 10 s (GP from jiffy 1000, ``jiffies_stall`` 3100), reset
  at 15 s (jiffy 1500): ``rest_of_gp`` -> no report; ``timeout`` -> 1500 + 2100 = 3600 (36.00,
  t=2600); ``third_fqs`` -> third FQS pass at 1503, 1503 + 2100 = 3603 (36.03, t=2603).
* stale jiffies: CPU 3 preempt-off from 5 s (GP from 500) and stalled 10-20 s, every other CPU
  hard-off 10-20 s: no CPU takes a tick from 10 s, so ``jiffies`` stand at 1000 until 20 s.  Reset
  at 15 s: ``timeout`` -> 1000 + 2100 = 3100 (31.00, t=2600: the 5 s of blackout since the freeze
  are lost); ``third_fqs`` -> the FQS passes wait for a CPU that can run the GP kthread (20 s,
  jiffy 2000): 2003 + 2100 = 4103 (41.03, t=3603); ``rest_of_gp`` -> none.  Without a reset: 26.00.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from lpmsim.config.loader import build_scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates
from lpmsim.kernel.config import Kernel
from lpmsim.kernel.model import KernelRun
from lpmsim.kernel.rcu_stall import RcuStall

from .cases import INF, s
from .harness import BASE, merge, run_case
from .test_roundtrip import _check

AUDIT = {"sim": {"max_time_s": 60}, "script": [s(3, 10.0, "preempt_off", INF)]}
STALE = {
    "kernel": {"nmi_watchdog": 0},
    "sim": {"max_time_s": 60},
    "script": [s(3, 5.0, "preempt_off", INF), s(3, 10.0, "stalled", 10.0)]
    + [s(c, 10.0, "irqs_hard_off", 10.0) for c in range(8) if c != 3],
}
SELF = "rcu: INFO: rcu_sched self-detected stall on CPU"


def _mode(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setattr(Kernel, "rcu_reset", property(lambda self: mode))


def _rcu(over: dict[str, Any], calls: list[Any]) -> tuple[list[tuple[float, str, list[int], str]], list[str]]:
    r = run_case(merge(BASE, over), calls)
    return [(e["time_s"], e["kind"], e["cpus"], e["line"]) for e in r.events({"rcu_stall"})], r.lines


@pytest.mark.parametrize(
    ("mode", "want"),
    [
        ("rest_of_gp", []),
        ("timeout", [(36.00, 2600)]),
        ("third_fqs", [(36.03, 2603)]),
    ],
)
def test_reset_modes_audit_example(monkeypatch: pytest.MonkeyPatch, mode: str, want: list) -> None:
    _mode(monkeypatch, mode)
    evs, lines = _rcu(AUDIT, [(15.0, "rcu_cpu_stall_reset")])
    assert [(e[1], e[2], e[3]) for e in evs] == [("self-detected", [3], SELF)] * len(want)
    for (t, _k, _c, _l), (wt, tj) in zip(evs, want, strict=True):
        assert math.isclose(t, wt, abs_tol=1e-6)
        assert f"rcu: \t(t={tj} jiffies g=10005 q=0 ncpus=8)" in lines


def test_no_reset_reference() -> None:
    evs, _ = _rcu(AUDIT, [])
    assert [(round(t, 6), k) for t, k, _c, _l in evs] == [(31.0, "self-detected")]


@pytest.mark.parametrize(
    ("mode", "want"),
    [
        ("rest_of_gp", []),
        ("timeout", [(31.00, 2600)]),
        ("third_fqs", [(41.03, 3603)]),
    ],
)
def test_reset_counts_from_stale_jiffies(monkeypatch: pytest.MonkeyPatch, mode: str, want: list) -> None:
    _mode(monkeypatch, mode)
    evs, lines = _rcu(STALE, [(15.0, "rcu_cpu_stall_reset")])
    assert len(evs) == len(want)
    for (t, kind, cpus, _l), (wt, tj) in zip(evs, want, strict=True):
        assert (kind, cpus) == ("self-detected", [3])
        assert math.isclose(t, wt, abs_tol=1e-6)
        assert f"rcu: \t(t={tj} jiffies g=10005 q=0 ncpus=8)" in lines


def test_stale_reference_without_reset() -> None:
    evs, _ = _rcu(STALE, [])
    assert [(round(t, 6), k) for t, k, _c, _l in evs] == [(26.0, "self-detected")]


@pytest.mark.parametrize(
    ("script", "trailer"),
    [
        # self-detected: "\t(t=%lu jiffies g=%ld q=%lu)\n" by pr_cont, its own record, no prefix
        ([s(4, 100.5, "preempt_off", INF)], "\t(t=2100 jiffies g=10005 q=0)"),
        # other CPUs: "\t(detected by %d, t=%ld jiffies, g=%ld, q=%lu)\n"
        ([s(3, 100.5, "irqs_hard_off", INF)], "\t(detected by 0, t=2102 jiffies, g=10005, q=0)"),
    ],
)
def test_old_trailer_pr_cont(script: list, trailer: str) -> None:
    """5.14 (before v5.19's ncpus= and v6.2's pr_err trailer)."""
    data = merge(
        BASE, {"kernel": {"nmi_watchdog": 0, "version": "5.14"}, "sim": {"max_time_s": 130}, "script": script}
    )
    r = run_case(data)
    assert trailer in r.lines
    assert not any("ncpus=" in ln for ln in r.lines)
    # triage reads the prefix-less continuation as the report's companion: same events, same times
    from lpmsim.runner import simulate, summarise

    st = simulate(build_scenario(data))
    assert st.kernel is not None
    full = st.kernel.model.log.lines()
    assert any(ln.endswith("] " + trailer) for ln in full)
    _check(summarise(st, 0.0), full)


def _model(vcpus: int, hz: int | None = None) -> RcuStall:
    data = merge(BASE, {"partition": {"vcpus": vcpus}})
    if hz is not None:
        data = merge(data, {"kernel": {"hz": hz}})
    sc = build_scenario(data)
    env = Environment(0.0)
    cpus = CpuStates(sc.partition.vcpus, lambda: env.now)
    return KernelRun(env, cpus, sc.kernel, sc.script, RngStreams(0)["kernel/nmi"]).model.rcu


@pytest.mark.parametrize(
    ("vcpus", "hz", "fqs"), [(8, None, 1), (255, None, 1), (256, None, 2), (512, 1000, 5)]
)
def test_jiffies_till_next_fqs(vcpus: int, hz: int | None, fqs: int) -> None:
    # RCU_JIFFIES_TILL_FORCE_QS (1 + (HZ > 250) + (HZ > 500)) + nr_cpu_ids / RCU_JIFFIES_FQS_DIV (256)
    assert _model(vcpus, hz).fqs_j == fqs


def test_backtrace_timing_and_reporter_busy() -> None:
    """Three unresponsive holdouts: the three "didn't respond" groups 5 s apart, the reporter
    (CPU 0) not taking timer interrupts in between and taking them again at the end."""
    data = merge(
        BASE,
        {
            "kernel": {"nmi_watchdog": 0},
            "sim": {"max_time_s": 137},
            "script": [s(c, 100.5, "irqs_hard_off", INF) for c in (2, 4, 6)],
        },
    )
    sc = build_scenario(data)
    env = Environment(0.0)
    cpus = CpuStates(sc.partition.vcpus, lambda: env.now)
    m = KernelRun(env, cpus, sc.kernel, sc.script, RngStreams(0)["kernel/nmi"]).model
    seen: list[tuple[float, bool]] = []
    for t in (121.0, 122.0, 131.0, 136.6):
        env.call_at(t, lambda t=t: seen.append((t, m.tok[0])))
    while not m.dead and env.peek() <= 137:
        env.step()
    assert seen == [(121.0, True), (122.0, False), (131.0, False), (136.6, True)]
    times = [(round(r.time_s, 6), r.text) for r in m.log.records if "didn't respond" in r.text]
    assert times == [
        (126.52, "CPU 2 didn't respond to backtrace IPI, inspecting paca."),
        (131.52, "CPU 4 didn't respond to backtrace IPI, inspecting paca."),
        (136.52, "CPU 6 didn't respond to backtrace IPI, inspecting paca."),
    ]
    assert all(r.caller == "C0" for r in m.log.records if "paca" in r.text)
    assert m.rcu.bt.sent == 3 and m.rcu.bt.no_response == 3


def test_responding_holdout_ends_the_wait() -> None:
    r = run_case(
        merge(
            BASE,
            {
                "kernel": {"nmi_watchdog": 0},
                "sim": {"max_time_s": 130},
                "script": [s(3, 100.5, "irqs_hard_off", 23.0)],
            },
        )
    )
    assert "NMI backtrace for cpu 3" in r.lines
    assert not any("didn't respond" in ln for ln in r.lines)


def test_triage_reads_the_dump_lines() -> None:
    """Every line of a report with its dumps is read: the report with its holdouts, ``t=`` and
    ``detected by``; each unanswered IPI as an ``nmi_backtrace`` ``no_response`` event with the
    task from the paca line; an answered one belongs to the report (no event of its own)."""
    from lpmsim.runner import simulate
    from lpmsim.triage.analyze import triage_text

    # CPU 2 takes interrupts again at 123.5: it answers; CPUs 4 and 6 never do (5 s each)
    script = [s(2, 100.5, "irqs_hard_off", 23.0)] + [s(c, 100.5, "irqs_hard_off", INF) for c in (4, 6)]
    data = merge(BASE, {"kernel": {"nmi_watchdog": 0}, "sim": {"max_time_s": 140}, "script": script})
    st = simulate(build_scenario(data))
    assert st.kernel is not None
    text = st.kernel.model.log.text()
    assert "[  123.500000] NMI backtrace for cpu 2" in text
    evs = [
        (e.type, e.variant, e.cpus, round(float(e.time_s or 0), 6), e.task, e.detected_by, e.jiffies)
        for e in triage_text(text).events
        if e.type in ("rcu_stall", "nmi_backtrace")
    ]
    assert evs == [
        ("rcu_stall", "other", [2, 4, 6], 121.52, None, 0, 2102),
        ("nmi_backtrace", "no_response", [4], 128.5, "script/4:1004", None, None),
        ("nmi_backtrace", "no_response", [6], 133.5, "script/6:1006", None, None),
    ]


def test_holdout_that_reports_before_the_walk_reaches_it_is_skipped() -> None:
    """``rcu_dump_cpu_stacks`` reads ``rnp->qsmask`` as it reaches each CPU: CPU 6, back at 123.5
    while the reporter waits on CPU 2 (121.52-126.52) and 4 (-131.52), is no longer dumped."""
    script = [s(c, 100.5, "irqs_hard_off", INF) for c in (2, 4)] + [s(6, 100.5, "irqs_hard_off", 23.0)]
    r = run_case(merge(BASE, {"kernel": {"nmi_watchdog": 0}, "sim": {"max_time_s": 135}, "script": script}))
    # the fourth flag is 0: the irq_work queued at the FQS pass after jiffies_resched (100.5 + 10.51
    # s) is still pending (rcu_iw_pending, delta 0) - the hard-off CPU took no interrupt since
    assert "rcu: \t6-...0: (0 ticks this GP) idle=0000/1/0x4000000000000000 softirq=0/0 fqs=2102" in r.lines
    sent = [ln for ln in r.lines if ln.startswith("Sending NMI")]
    assert sent == ["Sending NMI from CPU 0 to CPUs 2:", "Sending NMI from CPU 0 to CPUs 4:"]


@pytest.mark.parametrize(("mode", "second"), [("timeout", 144.02), ("rest_of_gp", None)])
def test_reset_during_the_report_is_kept(
    monkeypatch: pytest.MonkeyPatch, mode: str, second: float | None
) -> None:
    """A reset while the report waits on its backtrace IPI (121.52-126.52) wins over the report's own
    re-warn time (``jiffies_stall == jn`` no longer holds): ``timeout`` at 123.0 -> 12300 + 2100,
    reported by CPU 0 at 14402; ``rest_of_gp`` -> nothing more (the re-warn would be 189.57)."""
    _mode(monkeypatch, mode)
    over = {
        "kernel": {"nmi_watchdog": 0},
        "sim": {"max_time_s": 200},
        "script": [s(3, 100.5, "irqs_hard_off", INF)],
    }
    evs, _ = _rcu(over, [(123.0, "rcu_cpu_stall_reset")])
    want = [121.52] + ([second] if second is not None else [])
    assert [round(t, 6) for t, *_ in evs] == want

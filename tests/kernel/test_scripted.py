"""Table-driven scripted cases: expected reports computed by hand (see cases.py)."""

from __future__ import annotations

import math

import pytest

from .cases import CASES, Case
from .harness import run_case


def _is_subsequence(needles: list[str], hay: list[str]) -> bool:
    it = iter(hay)
    return all(any(n == h for h in it) for n in needles)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case) -> None:
    r = run_case(case.data(), case.calls)
    got = r.events(case.detectors)
    want = case.expect
    assert [(e["detector"], e["kind"], e["cpus"], e["by"], e["line"]) for e in got] == [
        (d, k, c, b, ln) for (_t, d, k, c, b, ln) in want
    ], "\n".join(
        f"{e['time_s']:.6f} {e['detector']} {e['kind']} {e['cpus']} {e['by']} {e['line']}" for e in got
    )
    for e, w in zip(got, want, strict=True):
        assert math.isclose(e["time_s"], w[0], abs_tol=2e-6), (e, w)
    assert r.summary["outcome"] == case.outcome
    if case.crash is None:
        assert r.summary["crash"] is None
    else:
        c = r.summary["crash"]
        assert (c["cause"], c["cpu"]) == case.crash[1:]
        assert math.isclose(c["time_s"], case.crash[0], abs_tol=2e-6)
    assert _is_subsequence(case.log, r.lines), "\n".join(r.lines)
    if case.nmi is not None:
        n = r.summary["watchdogs"]["nmi_ipi"]
        assert (n["sent"], n["timed_out"], n["unrecoverable"]) == case.nmi


def test_at_least_30_cases() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)

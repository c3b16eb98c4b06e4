"""Random times and CPUs: reproducible from the seed, one stream per bug."""

from __future__ import annotations

from typing import Any

from .helpers import run_static

RANDOM_BUGS: list[dict[str, Any]] = [
    {"kind": "irqs_soft_off_spin", "window_s": [10, 60]},
    {"kind": "abba_deadlock", "window_s": [10, 60]},
    {"kind": "d_state", "window_s": [0, 5]},
]


def _draws(s: dict[str, Any]) -> list[tuple[list[int], float]]:
    return [(b["cpus"], b["due_s"]) for b in s["bugs"]]


def test_same_seed_same_bugs_and_reports() -> None:
    a = run_static(RANDOM_BUGS, sim={"seed": 7, "max_time_s": 200})
    b = run_static(RANDOM_BUGS, sim={"seed": 7, "max_time_s": 200})
    assert a["bugs"] == b["bugs"] and a["events"] == b["events"]
    c = run_static(RANDOM_BUGS, sim={"seed": 8, "max_time_s": 200})
    assert _draws(c) != _draws(a)


def test_draws_within_their_ranges() -> None:
    for seed in range(20):
        s = run_static(RANDOM_BUGS, sim={"seed": seed, "max_time_s": 1})
        (c1, t1), (c2, t2), (c3, t3) = _draws(s)
        assert 10 <= t1 <= 60 and 10 <= t2 <= 60 and 0 <= t3 <= 5
        assert all(0 <= c < 8 for c in c1 + c2 + c3)
        assert len(c2) == 2 and c2[0] != c2[1]


def test_a_fixed_cpu_keeps_the_deadlock_distinct() -> None:
    for seed in range(20):
        s = run_static([{"kind": "abba_deadlock", "cpu": 3, "at_s": 1}], sim={"seed": seed, "max_time_s": 1})
        a, b = s["bugs"][0]["cpus"]
        assert a == 3 and b != 3 and 0 <= b < 8


def test_adding_a_bug_never_changes_the_others() -> None:
    one = run_static(RANDOM_BUGS[:1], sim={"seed": 3, "max_time_s": 1})
    three = run_static(RANDOM_BUGS, sim={"seed": 3, "max_time_s": 1})
    assert _draws(three)[0] == _draws(one)[0]
    two = run_static(RANDOM_BUGS[:2], sim={"seed": 3, "max_time_s": 1})
    assert _draws(two) == _draws(three)[:2]

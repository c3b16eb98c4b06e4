"""The text view: every candidate, the recommendation, the deployment; outside text stays text."""

from __future__ import annotations

import io

from rich.console import Console

from lpmsim.advise.candidates import candidates_for
from lpmsim.advise.deploy import guard_toml, instructions
from lpmsim.advise.facts import Facts
from lpmsim.advise.recommend import choose
from lpmsim.advise.render import render
from lpmsim.advise.results import Advice, Detection, Fit, ParameterRange, Race, Scored
from lpmsim.sweeps.stats import Proportion

FACTS = Facts(64, 256, 1.0, "pre-v6.0", "5.14.21-150400.24.46-default", source="partition [red]/x")


def scored(name: str, k: int, n: int) -> Scored:
    det = Detection(2, Proportion(2, 2), 21.5, (20.0, 23.0))
    return Scored(
        name, n, 0, Proportion(k, n), Proportion(0, n), Proportion(k, n), {"hardlockup": 1.0}, {}, None, det
    )


def test_render_shows_everything_and_no_markup() -> None:
    cands = candidates_for(FACTS)
    race = Race(1.0, 100.0, tuple(scored(c.name, 8 if c.name == "none" else 0, 8) for c in cands))
    choice = choose(race)
    chosen = next(c for c in cands if c.name == choice.name)
    fit = Fit(
        "[bold]console.log",
        {"fired": ["hardlockup"]},
        0.25,
        16,
        3,
        (ParameterRange("platform.link_gbps", (0.1, 2.0), None, (0.5, 0.7, 0.9)),),
    )
    advice = Advice(
        FACTS,
        {
            "horizon_after_resume_s": 120.0,
            "injected_lockup": {"kind": "irqs_hard_off_spin", "window_after_resume_s": [5, 30], "runs": 2},
        },
        tuple(cands),
        race,
        choice,
        instructions(chosen, FACTS),
        guard_toml(chosen, FACTS),
        (),
        (),
        fit,
    )
    buf = io.StringIO()
    render(advice, Console(file=buf, width=200, force_terminal=False, color_system=None))
    text = buf.getvalue()
    assert "facts from partition [red]/x" in text and "Fit to [bold]console.log: 3 of 16" in text
    assert "accepted 0.5-0.9 (median 0.7)" in text
    for c in cands:
        assert c.name in text
    assert choice.name == "guard-factor-200"  # the least intrusive of the safe ones
    assert "Recommendation: guard-factor-200" in text
    assert 'policy = "nmi-factor:200"' in text
    assert "21.5 s" in text

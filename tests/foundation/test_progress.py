"""``simulate``'s progress callback (what ``lpmsim run`` shows on a terminal): simulated time and
the time the run is expected to stop, never behind the clock, within the scenario's limit."""

from __future__ import annotations

from lpmsim.config.loader import load_scenario
from lpmsim.runner import simulate


def test_progress_reports_time_and_expected_stop() -> None:
    sc = load_scenario(preset="small", overrides=["sim.mode=fluid", "platform.link_gbps=0.5"])
    seen: list[tuple[float, float]] = []
    st = simulate(sc, progress=lambda now, horizon: seen.append((now, horizon)))
    assert len(seen) > 10
    nows = [n for n, _ in seen]
    assert nows == sorted(nows)
    assert all(n <= h <= sc.sim.max_time_s for n, h in seen[:-1])
    # during post-copy the horizon is the pages left at one page time each plus the tail: below
    # the scenario's limit (7,200 s; this run stops about 200 s in)
    post = [h for n, h in seen[:-1] if n > st.resume_s]
    assert post and max(post) < sc.sim.max_time_s
    assert seen[-1] == (st.end_s, sc.sim.max_time_s)

"""Invariants of the transfer model in both fidelity modes (Hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpmsim.runner import simulate

from .helpers import scenario

platforms = st.fixed_dictionaries(
    {
        "discipline": st.sampled_from(["shared-fifo", "demand-first"]),
        "prefetch": st.integers(0, 8),
        "window": st.integers(1, 128),
        "order": st.sampled_from(["address", "hottest-first"]),
        "vcpus": st.integers(1, 12),
        "seed": st.integers(0, 2**32),
        "forced": st.one_of(st.none(), st.floats(0.0, 0.2)),
        "rate": st.sampled_from([0.0, 0.2, 1.0]),
    }
)


def _sc(p: dict[str, object], mode: str):  # type: ignore[no-untyped-def]
    ov = [
        f"platform.discipline={p['discipline']}",
        f"platform.prefetch_pages={p['prefetch']}",
        f"platform.push_window_pages={p['window']}",
        f"platform.push_order={p['order']}",
        f"partition.vcpus={p['vcpus']}",
        "partition.memory_gib=0.5",
        f"sim.seed={p['seed']}",
        f"workload.touch_scale={p['rate']}",
        f"sim.mode={mode}",
    ]
    if p["forced"] is not None:
        ov.append(f"migration.resume_missing_fraction={p['forced']}")
    return scenario(*ov)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(platforms)
def test_exact_every_missing_page_arrives_exactly_once(p: dict[str, object]) -> None:
    sc = _sc(p, "exact")
    st_ = simulate(sc, trace=True)
    assert st_.precopy is not None and st_.link is not None
    missing = np.flatnonzero(st_.precopy.missing_pages)
    sent = np.array(st_.counters.sent_pages or [], dtype=np.int64)
    assert sent.size == np.unique(sent).size, "a page was sent twice"
    assert np.array_equal(np.sort(sent), missing), "sent pages differ from the pages missing at resume"
    c = st_.counters
    assert c.pushed + c.demanded + c.prefetched == missing.size
    assert st_.completed_s is not None and st_.completed_s >= st_.resume_s
    assert st_.link.pages.not_resident == 0
    assert (st_.link.pages.state == 0).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(platforms)
def test_fluid_conserves_pages_and_completes(p: dict[str, object]) -> None:
    sc = _sc(p, "fluid")
    st_ = simulate(sc)
    assert st_.precopy is not None and st_.fluid is not None
    c = st_.counters
    assert c.pushed + c.demanded + c.prefetched == st_.precopy.missing_count
    assert int(st_.fluid.missing.sum()) == 0 == st_.fluid.missing_total
    assert (st_.fluid.missing >= 0).all()
    assert st_.completed_s is not None and st_.completed_s >= st_.resume_s


def test_without_push_only_demand_traffic_and_no_completion() -> None:
    # Half the memory missing: the cold pages are touched too rarely to all be demanded in time.
    sc = scenario(
        "platform.background_push=false", "migration.resume_missing_fraction=0.5", "sim.max_time_s=40"
    )
    st_ = simulate(sc)
    assert st_.counters.pushed == 0
    assert st_.counters.demanded > 0
    assert st_.completed_s is None
    assert st_.end_s == 40


def test_precopy_round_one_sends_everything_and_later_rounds_shrink() -> None:
    st_ = simulate(
        scenario(
            "migration.precopy_stop_fraction=0",
            "migration.precopy_max_rounds=6",
            "migration.precopy_max_factor=100",
        )
    )
    pre = st_.precopy
    assert pre is not None
    assert pre.round_pages[0] == scenario().total_pages
    assert pre.rounds == 6 and pre.stop_reason == "max_rounds"
    assert pre.pages_sent == sum(pre.round_pages)
    assert abs(pre.duration_s - pre.pages_sent * scenario().page_time_s) < 1e-9


def test_forced_missing_fraction_is_honoured() -> None:
    for mode in ("exact", "fluid"):
        st_ = simulate(scenario("migration.resume_missing_fraction=0.3", f"sim.mode={mode}"))
        assert st_.precopy is not None
        frac = st_.precopy.missing_count / scenario().total_pages
        assert abs(frac - 0.3) < 0.01, (mode, frac)
        assert st_.precopy.stop_reason == "forced"

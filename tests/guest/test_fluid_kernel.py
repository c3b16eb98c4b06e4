"""The compiled fluid step (issue 12; docs/performance.md, "Round 3: the compiled fluid step").

* The draws (``lpmsim.guest.fluid_draws``) have their distributions: moments and a chi-square
  test against the exact probabilities, for small and large means (the chunked inversions).
* The compiled generator gives the words of the Python one (``_uniform_py``).
* The Python path (``LPMSIM_NUMBA=0``, what runs where numba cannot be installed) gives the same
  ``summary.json`` bytes as the compiled one, in another process.
* The same scenario and seed give the same summary in two processes.
* The transfer conserves pages under any sequence of compiled steps (Hypothesis).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpmsim.config.loader import load_scenario
from lpmsim.guest import fluid_draws as d
from lpmsim.runner import run_scenario

SMALL_OLTP = [  # benchmarks/run_bench.py's small-oltp case (resume at 22 s)
    "partition.vcpus=64",
    "partition.memory_gib=64",
    "platform.link_gbps=25",
    "platform.rtt_us=200",
    "migration.resume_missing_fraction=0.3",
    "workload.preset=oltp",
    "sim.mode=fluid",
]


def _state(seed: int) -> np.ndarray:
    return d.seed_state(np.random.default_rng(seed))


def _chi2_ok(counts: np.ndarray, probs: np.ndarray, n: int) -> bool:
    """Chi-square test at the 1e-4 level over the bins with at least 5 expected draws."""
    from scipy import stats

    exp = probs * n
    keep = exp >= 5
    obs = np.append(counts[keep], counts[~keep].sum())
    ex = np.append(exp[keep], exp[~keep].sum())
    if ex[-1] < 5:
        obs[-2] += obs[-1]
        ex[-2] += ex[-1]
        obs, ex = obs[:-1], ex[:-1]
    ex *= obs.sum() / ex.sum()
    return bool(stats.chisquare(obs, ex).pvalue > 1e-4)


@pytest.mark.parametrize("lam", [0.05, 2.5, 15.9, 40.0, 300.0])
def test_poisson_has_its_distribution(lam: float) -> None:
    from scipy import stats

    s = _state(1)
    n = 20000
    x = np.array([d.poisson(s, lam) for _ in range(n)])
    kmax = int(lam + 10 * math.sqrt(lam) + 10)
    counts = np.bincount(np.minimum(x, kmax), minlength=kmax + 1)
    probs = stats.poisson.pmf(np.arange(kmax + 1), lam)
    probs[-1] += stats.poisson.sf(kmax, lam)
    assert _chi2_ok(counts, probs, n)


@pytest.mark.parametrize(("n", "p"), [(10, 0.3), (1000, 0.002), (5000, 0.05), (40, 0.93), (7, 1.0), (0, 0.5)])
def test_binomial_has_its_distribution(n: int, p: float) -> None:
    from scipy import stats

    s = _state(2)
    draws = 20000
    x = np.array([d.binomial(s, n, p) for _ in range(draws)])
    assert x.min() >= 0 and x.max() <= n
    if n == 0 or p >= 1.0:
        assert (x == n * (p >= 1.0)).all()
        return
    counts = np.bincount(x, minlength=n + 1)
    assert _chi2_ok(counts, stats.binom.pmf(np.arange(n + 1), n, p), draws)


def test_exponential_and_categorical() -> None:
    from scipy import stats

    s = _state(3)
    x = np.array([d.exponential(s, 0.25) for _ in range(20000)])
    assert stats.kstest(x, stats.expon(scale=0.25).cdf).pvalue > 1e-4
    p = np.array([0.1, 0.0, 0.25, 0.65])
    cdf = p.cumsum() / p.sum()
    k = np.array([d.categorical(s, cdf) for _ in range(20000)])
    counts = np.bincount(k, minlength=4)
    assert counts[1] == 0
    assert _chi2_ok(counts[[0, 2, 3]], p[[0, 2, 3]], 20000)


def test_multinomial_sums_and_shares() -> None:
    s = _state(4)
    w = np.array([3.0, 0.0, 1.0, 6.0, 0.0])
    out = np.zeros(5, dtype=np.int64)
    acc = np.zeros(5)
    for _ in range(4000):
        d.multinomial(s, 50, w, out)
        assert out.sum() == 50 and out[1] == 0 and out[4] == 0
        acc += out
    assert np.allclose(acc / acc.sum(), w / w.sum(), atol=0.01)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=12), st.integers(0, 600), st.integers(0, 2**32))
def test_take_proportional_takes_what_there_is(avail: list[int], n: int, seed: int) -> None:
    a = np.array(avail, dtype=np.int64)
    take = np.zeros_like(a)
    got = d.take_proportional(_state(seed), a, n, take, np.zeros(a.size), np.zeros(a.size, dtype=np.int64))
    assert got == take.sum() == min(n, int(a.sum()))
    assert (take >= 0).all() and (take <= a).all()


def _poisson_search(s: np.ndarray, lam: float) -> int:
    """``fluid_draws._poisson_small`` without its zero shortcut: the plain search (Python)."""
    p = math.exp(-lam)
    acc = p
    u = d._uniform_py(s)
    k = 0
    kmax = int(lam + 40.0 * math.sqrt(lam) + 40.0)
    while u >= acc and k < kmax:
        k += 1
        p *= lam / k
        acc += p
    return k


def _binomial_search(s: np.ndarray, n: int, p: float) -> int:
    """``fluid_draws._binomial_small`` without its zero shortcut: the plain search (Python)."""
    q = 1.0 - p
    r = p / q
    f = math.exp(n * math.log(q))
    u = d._uniform_py(s)
    k = 0
    while u >= f and k < n:
        u -= f
        k += 1
        f *= r * (n - k + 1) / k
    return k


def test_zero_shortcuts_give_the_searchs_draws() -> None:
    """Round 5: a uniform below the bound of P(0) returns 0 without ``exp``/``log``; every draw
    equals the plain search's on the same uniform, and so does the episode start test against
    ``expm1``, here over means where the shortcut and the search both decide often."""
    rng = np.random.default_rng(11)
    a, b = _state(12), _state(12)
    zeros = 0
    for lam in np.concatenate([10.0 ** rng.uniform(-9, 0, 3000), rng.uniform(0, 16, 300)]):
        x = d._poisson_small(a, float(lam))
        assert x == _poisson_search(b, float(lam))
        zeros += x == 0
    assert a[0] == b[0] and zeros > 2000
    for _ in range(3000):
        n = int(rng.integers(1, 5000))
        p = float(min(0.5, 10.0 ** rng.uniform(-7, 0) / n))
        assert d._binomial_small(a, n, p) == _binomial_search(b, n, p)
    assert a[0] == b[0]
    from lpmsim.guest.fluid_kernel import episode_starts

    xs = np.concatenate([10.0 ** rng.uniform(-6, 1.5, 4000), np.array([0.0, 1.0, 1.0 - 1e-16])])
    for x in xs:
        lo = x - x * x / 2 + x**3 / 6 - x**4 / 24 if x < 1 else 1 - 1 / (1 + x + x * x / 2 + x**3 / 6)
        truth = -math.expm1(-x)
        for u in (
            rng.uniform(0, 1),
            truth,
            np.nextafter(truth, 0),
            np.nextafter(truth, 1),
            lo,
            max(0.0, lo - 1e-13),
        ):
            u = float(min(u, np.nextafter(1.0, 0)))
            assert episode_starts(u, float(x)) == (u < truth)


@pytest.mark.skipif(not d.HAVE_NUMBA, reason="numba not installed: only the Python path exists")
def test_compiled_generator_gives_the_python_words() -> None:
    a, b = _state(5), _state(5)
    for _ in range(1000):
        assert d.uniform(a) == d._uniform_py(b)
    assert a[0] == b[0]


def _summary_in_subprocess(overrides: list[str], env_extra: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json, sys\n"
        "from lpmsim.config.loader import load_scenario\n"
        "from lpmsim.runner import run_scenario\n"
        "s = run_scenario(load_scenario(preset='small', overrides=sys.argv[1:]))\n"
        "s.pop('wall_s')\n"
        "print(json.dumps(s, sort_keys=True))\n"
    )
    env = {**os.environ, **env_extra}
    out = subprocess.run(
        [sys.executable, "-c", code, *overrides], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def _summary_here(overrides: list[str]) -> dict[str, Any]:
    s = run_scenario(load_scenario(preset="small", overrides=overrides))
    s.pop("wall_s")
    return dict(json.loads(json.dumps(s, sort_keys=True)))


def test_python_path_gives_the_compiled_results() -> None:
    """Without numba (``LPMSIM_NUMBA=0``) every kernel runs as Python: the same summary."""
    ov = [*SMALL_OLTP, "sim.max_time_s=24.5"]  # 2.25 s of post-copy, ~3,000 steps
    compiled = _summary_here(ov)
    python = _summary_in_subprocess(ov, {"LPMSIM_NUMBA": "0"})
    assert compiled["migration"]["demand_faults"] > 10000
    assert python == compiled


def test_python_path_gives_the_compiled_results_when_stalls_are_published() -> None:
    """The same where the latency is above ``sim.fluid_publish_min_s`` (1 s), so that episodes are
    published one stall at a time (``PUB_FIRST_STALL``, ``PUB_STALL``) and the RTAS call after the
    resume stalls at each fault: 8 vCPUs, 0.02 Gb/s, 30 % missing, 40 s of post-copy."""
    ov = [
        "platform.link_gbps=0.02",
        "migration.resume_missing_fraction=0.3",
        "sim.mode=fluid",
        "sim.max_time_s=1760",
        "workload.preset=oltp",
    ]
    compiled = _summary_here(ov)
    python = _summary_in_subprocess(ov, {"LPMSIM_NUMBA": "0"})
    assert compiled["migration"]["fault_latency_s"]["mean"] > 1.0
    assert compiled["events"]  # the RTAS call's reports
    assert python == compiled


def test_same_seed_same_summary_in_another_process() -> None:
    ov = [*SMALL_OLTP, "sim.max_time_s=23.5", "sim.seed=7"]
    assert _summary_in_subprocess(ov, {}) == _summary_here(ov)


_TINY_KERNEL = """
import numpy as np
from lpmsim.guest.fluid_draws import jit_nrt, poisson

@jit_nrt
def draws(st, lam, n):
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = poisson(st, lam)
    return out
"""
_TINY_RUN = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import tiny_kernel
from lpmsim.guest.fluid_draws import seed_state
x = tiny_kernel.draws(seed_state(np.random.default_rng(3)), 2.5, 200)
s = tiny_kernel.draws.stats
print(json.dumps([x.tolist(), sum(s.cache_hits.values()), sum(s.cache_misses.values()),
                  "numba.np.arraymath" in sys.modules]))
"""


@pytest.mark.skipif(not d.HAVE_NUMBA, reason="numba not installed: only the Python path exists")
def test_a_cached_kernel_loads_without_numbas_compiler(tmp_path: Path) -> None:
    """``fluid_draws._LoadWithoutRefresh``: with an empty cache a process compiles (numba's
    compiler and its registries loaded, as numba does); the next process loads the cached
    machine code without them (``numba.np.arraymath`` never imported) and draws the same numbers,
    those of the kernels run here."""
    (tmp_path / "tiny_kernel.py").write_text(_TINY_KERNEL)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}

    def run() -> list[Any]:
        out = subprocess.run(
            [sys.executable, "-c", _TINY_RUN, str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return list(json.loads(out.stdout))

    first, second = run(), run()
    assert first[1:] == [0, 1, True]  # compiled, with numba's registries
    assert second[1:] == [1, 0, False]  # loaded from the cache, without them
    st = _state(3)
    assert first[0] == second[0] == [d.poisson(st, 2.5) for _ in range(200)]


# -- the transfer conserves pages under compiled steps ------------------------------------------
transfers = st.fixed_dictionaries(
    {
        "discipline": st.sampled_from(["shared-fifo", "demand-first"]),
        "prefetch": st.integers(0, 6),
        "window": st.integers(1, 64),
        "order": st.sampled_from(["address", "hottest-first"]),
        "seed": st.integers(0, 2**32),
        "faults": st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=1), min_size=1, max_size=40),
        "dt": st.floats(1e-4, 0.05),
        "lat": st.floats(1e-4, 0.2),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transfers)
def test_compiled_transfer_conserves_pages(p: dict[str, Any]) -> None:
    from lpmsim.engine.core import Environment
    from lpmsim.hypervisor.fluid import FluidTransfer
    from lpmsim.hypervisor.layout import Layout

    sc = load_scenario(
        preset="small",
        overrides=[
            "sim.mode=fluid",
            "partition.memory_gib=0.5",
            f"platform.discipline={p['discipline']}",
            f"platform.prefetch_pages={p['prefetch']}",
            f"platform.push_window_pages={p['window']}",
            f"platform.push_order={p['order']}",
        ],
    )
    layout = Layout(sc)
    buckets = layout.buckets
    rng = np.random.default_rng(p["seed"])
    missing = rng.integers(0, 50, size=buckets.region.size)
    start = int(missing.sum())
    tr = FluidTransfer(sc, buckets, missing, rng, 0.0, Environment(0.0))
    nreg = tr.nregions
    for step, f in enumerate(p["faults"]):
        faults = np.zeros(nreg, dtype=np.int64)
        faults[step % nreg] = f[0]
        tr.serve(faults, p["lat"], p["dt"])
        assert (tr.missing >= 0).all()
        assert tr.missing_total == int(tr.missing.sum())
        c = tr.counters
        assert c.pushed + c.demanded + c.prefetched == start - tr.missing_total
        assert tr.backlog >= 0.0
        assert (np.asarray(tr.region_missing_mass()) >= 0).all()


BATCH_SETTINGS = [
    [*SMALL_OLTP, "sim.max_time_s=24.5"],
    [  # reports, an injected bug's claim, RTAS calls of the mobility flow during post-copy
        "sim.mode=fluid",
        "platform.link_gbps=0.1",
        "migration.resume_missing_fraction=0.5",
        "mitigation.policy=annotate",
        'bugs=[{kind="irqs_hard_off_spin", at_s=3}]',
    ],
]


@pytest.mark.parametrize("overrides", BATCH_SETTINGS, ids=["small-oltp", "annotate-bug"])
def test_batched_steps_change_nothing(monkeypatch: pytest.MonkeyPatch, overrides: list[str]) -> None:
    """Steps run back to back in one compiled call (``FluidGuest.batch``) give the results of one
    step per call: only the event count drops."""
    from lpmsim.guest.fluid import FluidGuest

    out = []
    for batch in (True, False):
        monkeypatch.setattr(FluidGuest, "batch", batch)
        log: list[str] = []
        s = run_scenario(load_scenario(preset="small", overrides=overrides), kernel_log=log)
        s.pop("wall_s")
        events = s["sim"].pop("events")
        out.append((s, log, events))
    (a, log_a, ev_a), (b, log_b, ev_b) = out
    assert ev_a < ev_b
    assert a == b
    assert log_a == log_b

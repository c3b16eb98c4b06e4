"""The Python around a compiled fluid batch (docs/performance.md, "Round 7").

* ``FluidGuest._run`` binds the arrays of every ``fluid_batch`` call once
  (``fluid_kernel.batch_binding``; compiled, by address): they must stay the arrays their owners
  (the guest, its metrics, its transfer) use for the whole run, through RTAS calls, a claim, the
  pending ring growing.  Rebinding one of them would leave the kernel writing the old array.
* ``batch_binding`` refuses an array of another dtype, shape or layout than ``BOUND`` says.
* The views from addresses (``fluid_draws.f8_view`` ...) are the arrays themselves.
* ``GuestMetrics.ctx_faults`` holds the faults the compiled step counted per context row
  (``ctx_nf``) as soon as it is read, and the writers' own.

That the results are those of the arrays passed one by one: ``benchmarks/fingerprint.py --check``
(every digest unchanged) and ``test_python_path_gives_the_compiled_results`` (the Python path
calls ``fluid_batch`` with the arrays).
"""

from __future__ import annotations

import numpy as np
import pytest

from lpmsim.config.loader import load_scenario
from lpmsim.guest import fluid_draws as d
from lpmsim.guest import fluid_kernel as fk
from lpmsim.guest.cpustate import Ctx
from lpmsim.guest.fluid import FluidGuest
from lpmsim.guest.metrics import GuestMetrics
from lpmsim.runner import simulate


def test_bound_arrays_stay_the_owners_arrays() -> None:
    # 256 vCPUs of the stress setting, 150 s after resume: the mobility flow's RTAS calls during
    # post-copy, an injected bug that claims a vCPU (fingerprint.py's ``stress-256-bug``)
    sc = load_scenario(
        preset="lpm-2022",
        overrides=[
            "sim.mode=fluid",
            "platform.link_gbps=0.5",
            "migration.resume_missing_fraction=0.05",
            "partition.vcpus=256",
            "partition.memory_gib=128",
            "sim.max_time_s=8948.0",
            "kernel.preset=upstream",
            "kernel.version=6.6.3",
            'bugs=[{kind="irqs_hard_off_spin", at_s=10}]',
        ],
    )
    st = simulate(sc)
    g = st.guest
    assert isinstance(g, FluidGuest) and g.transfer is not None
    assert g.steps > 1000 and g.n_claimed == 1 and st.bugs is not None
    bound = g._bound_arrays
    now = g._batch_arrays(g.transfer)
    assert len(bound) == len(now) == len(fk.BOUND)
    moved = [name for (name, _t, _n), a, b in zip(fk.BOUND, bound, now, strict=True) if a is not b]
    assert moved == []
    # the counts the kernel took out of the transfer's array reached its counters
    assert g.transfer.counters.requests > 0 and g.transfer.counters.pushed > 0
    assert not g.transfer._cnt.any()


def test_batch_binding_refuses_other_arrays() -> None:
    dtypes = {"f8": np.float64, "i8": np.int64, "u8": np.uint64}
    good = tuple(np.zeros((3,) * n, dtype=dtypes[t]) for _name, t, n in fk.BOUND)
    call, bound = fk.batch_binding(good)
    if d.HAVE_VIEWS:
        assert call is fk.fluid_batch_at
        addr, dims = bound
        assert addr.tolist() == [a.ctypes.data for a in good]
        assert dims[fk.BOUND.index(("weights", "f8", 2))].tolist() == [3, 3]
    else:
        assert call is fk.fluid_batch and bound == good
    j = fk.BOUND.index(("busy", "f8", 1))
    for bad, why in (
        (np.zeros(3, dtype=np.int64), "int64"),  # another dtype
        (np.zeros((3, 3)), "2-d"),  # another shape
        (np.zeros(6)[::2], "contiguous False"),  # a strided view
    ):
        with pytest.raises(ValueError, match=why):
            fk.batch_binding((*good[:j], bad, *good[j + 1 :]))
    with pytest.raises(ValueError, match="arrays for the"):
        fk.batch_binding(good[:-1])


@pytest.mark.skipif(not d.HAVE_VIEWS, reason="numba not installed: no views from addresses")
def test_views_from_addresses_are_the_arrays() -> None:
    from numba import njit

    def bump(fa: int, ia: int, ua: int, rows: int, cols: int) -> float:
        f = d.f8_view(fa, (rows, cols))
        i = d.i8_view(ia, rows)
        u = d.u8_view(ua, 1)
        f[1, 2] += 0.5
        i[rows - 1] -= 3
        u[0] += np.uint64(1)
        return float(f.sum())

    compiled = njit(bump)
    f = np.arange(12.0).reshape(3, 4)
    i = np.arange(3, dtype=np.int64)
    u = np.array([2**64 - 1], dtype=np.uint64)
    total = compiled(f.ctypes.data, i.ctypes.data, u.ctypes.data, 3, 4)
    assert total == float(np.arange(12.0).sum() + 0.5)
    assert f[1, 2] == 6.5 and i.tolist() == [0, 1, -1] and int(u[0]) == 0  # (wraps, as uint64)


def test_ctx_faults_holds_the_compiled_steps_counts() -> None:
    m = GuestMetrics(4)
    rows = list(Ctx)
    m.ctx_nf[rows.index(Ctx.USER)] += 5
    m.ctx_nf[rows.index(Ctx.IRQS_SOFT_OFF)] += 2
    m.fault(0, Ctx.USER.value, 1e-3)  # a writer's own, before the fold
    assert m.ctx_faults[Ctx.USER.value] == 6
    assert m.ctx_faults[Ctx.IRQS_SOFT_OFF.value] == 2
    assert not m.ctx_nf.any()  # folded once
    m.ctx_faults[Ctx.USER.value] += 1  # the dict itself
    m.ctx_nf[rows.index(Ctx.USER)] += 1
    assert m.summary(4)["faults_by_context"][Ctx.USER.value] == 8
    assert sum(m.ctx_faults.values()) == 10

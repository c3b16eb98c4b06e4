"""``GuestBase.claim`` in the exact mode: let go at once, or when the fault stall ends; locks freed."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import pytest

from guest.helpers import guest_on_bare_link  # tests/guest, a package on the test path
from lpmsim.config.loader import load_scenario
from lpmsim.engine.core import Environment, Event
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates, Ctx
from lpmsim.guest.fluid import FluidGuest
from lpmsim.guest.metrics import GuestMetrics
from lpmsim.guest.vcpu import _Claimed, _Touch
from lpmsim.hypervisor.layout import Layout

# small preset link: 64 KiB pages on 1 Gb/s (524.288 us) + rtt 100 us + fault overhead 50 us
FAULT_S = 100e-6 + 524_288 / 1e9 + 50e-6


def _ended(
    out: dict[str, float], key: str, env: Environment, gen: Generator[Event, Any, None]
) -> Generator[Event, Any, None]:
    try:
        yield from gen
        out[key + "_done"] = env.now
    except _Claimed:
        out[key + "_claimed"] = env.now


def test_claimed_while_stalled_hands_over_when_the_page_arrives() -> None:
    env0, probe, _ = guest_on_bare_link([], 1)
    region = probe.layout.index["kernel_data"]
    page = int(probe.layout.starts[region])
    env, guest, cpus = guest_on_bare_link([page], 1)
    tc = _Touch(1e12, [region], [1.0])  # the missing page is touched at once
    out: dict[str, float] = {}
    ready: list[float] = []
    cpus.set_ctx(0, Ctx.KERNEL)
    env.process(_ended(out, "exec", env, guest._execute(0, Ctx.KERNEL, 1.0, tc, np.random.default_rng(0))))
    env.call_at(FAULT_S / 2, lambda: guest.claim(0, lambda: ready.append(env.now)))
    env.call_at(
        FAULT_S / 2 + 1e-9, lambda: out.setdefault("stalled_after_claim", float(cpus.cpus[0].stalled))
    )
    env.run()
    assert out["stalled_after_claim"] == 1.0  # the claim does not end the stall
    assert ready == [pytest.approx(FAULT_S, abs=1e-7)]
    assert out["exec_claimed"] == pytest.approx(FAULT_S, abs=1e-7)  # the process ends there
    assert cpus.cpus[0].stalled is False
    del env0


def test_claimed_holder_and_waiter_let_go_of_the_lock() -> None:
    env, guest, cpus = guest_on_bare_link([], 3)
    lock = next(lk for name, lk in guest.locks.items() if name != "rtas_lock")
    tc = _Touch(0.0, [0], [1.0])
    out: dict[str, float] = {}
    rng = np.random.default_rng(0)
    for cpu in range(3):
        env.process(_ended(out, f"cpu{cpu}", env, guest._locked(cpu, lock, 1.0, tc, rng)))
    # t=0: CPU 0 holds the lock, 1 and 2 spin on it.  At 0.1 CPU 1 (a waiter) is claimed: it leaves
    # the queue.  At 0.2 CPU 0 (the holder) is claimed: the lock passes to CPU 2 at once.
    env.call_at(0.1, lambda: guest.claim(1, lambda: None))
    env.call_at(0.2, lambda: guest.claim(0, lambda: None))
    env.call_at(0.15, lambda: out.setdefault("spinning_0.15", guest.spinning_now))
    env.run()
    assert out["spinning_0.15"] == 1
    assert out["cpu2_done"] == pytest.approx(1.2)  # acquired at 0.2, held 1 s
    assert out["cpu0_claimed"] == pytest.approx(1.0)  # its timeout woke it: it ends, writing nothing
    assert "cpu1_claimed" not in out and "cpu1_done" not in out  # never woken again
    assert lock.holder is None and not lock.waiters and guest.spinning_now == 0
    # the claimed CPUs' states are as the claim found them (spinning on the lock, or holding it)
    assert cpus.cpus[1].spinning == lock.name
    assert cpus.cpus[2].spinning is None


def test_claim_twice_is_an_error() -> None:
    _env, guest, _cpus = guest_on_bare_link([], 1)
    guest.claim(0, lambda: None)
    with pytest.raises(ValueError, match="already claimed"):
        guest.claim(0, lambda: None)


def test_fluid_claim_while_published_stalled_waits_for_the_episode_end() -> None:
    sc = load_scenario(preset="small", overrides=["sim.mode=fluid", "partition.vcpus=2"])
    env = Environment()
    streams = RngStreams(1)
    cpus = CpuStates(2, lambda: env.now)
    guest = FluidGuest(env, sc, Layout(sc, streams["layout"]), cpus, streams, GuestMetrics(2))
    ready: list[int] = []
    # CPU 0 inside a long stall (published), CPU 1 running normally
    guest._publish(0, Ctx.IRQS_SOFT_OFF, True, None, 5.0)
    guest.busy[0] = 5.0
    guest.claim(0, lambda: ready.append(0))
    guest.claim(1, lambda: ready.append(1))
    assert ready == [1] and cpus.cpus[0].stalled
    guest.busy[0] = 0.0  # the step loop ran the episode down
    env.run()
    assert ready == [1, 0]
    c0 = cpus.cpus[0]
    assert (c0.stalled, c0.ctx) == (False, Ctx.IRQS_SOFT_OFF)  # the stall ends; the rest is the bug's
    assert guest.claimed_mask.tolist() == [True, True] and guest.ep_left.tolist() == [0, 0]

"""Issue 13 section 3: the kernel's own IPIs (RCU's resched/irq_work at the FQS pass after
``jiffies_resched``, the backtrace IPIs of a report) and the CPUs the kernel holds ``busy``.
Hand-computed scripted cases of the same behaviours are in cases_ipi.py."""

from __future__ import annotations

import pytest

from lpmsim.config.loader import build_scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates, Ctx
from lpmsim.kernel.hooks import DefaultGuestHooks
from lpmsim.kernel.model import KernelModel

from .harness import BASE, merge


def _model(
    n: int = 4, kernel: dict[str, object] | None = None
) -> tuple[Environment, CpuStates, DefaultGuestHooks, KernelModel]:
    sc = build_scenario(merge(BASE, {"kernel": kernel or {}}))
    env = Environment(0.0)
    cpus = CpuStates(n, lambda: env.now)
    hooks = DefaultGuestHooks(env, cpus)
    m = KernelModel(env, cpus, sc.kernel, RngStreams(1)["kernel/nmi"], hooks)
    return env, cpus, hooks, m


# -- the RCU resched IPI ----------------------------------------------------------------------------
def test_resched_ipi_at_the_first_fqs_pass_after_half_the_timeout() -> None:
    """GP from 100.5 (jiffy 10050): jiffies_resched = 10050 + 1050; the first FQS pass after it is
    at jiffy 11101 (111.01 s): the soft-masked holdout is hard-disabled then, not a jiffy before."""
    env, cpus, _h, m = _model()
    env.call_at(100.5, lambda: cpus.set_ctx(3, Ctx.IRQS_SOFT_OFF))
    env.run(until=111.0)
    assert m.rcu.holdouts == {3} and not cpus.cpus[3].hard_dis and m.rcu.resched_ipis == 0
    env.run(until=111.02)
    assert cpus.cpus[3].hard_dis and m.rcu.resched_ipis == 1
    assert not cpus.soft_nmi_reachable(3)


def test_resched_ipi_is_sent_once_per_grace_period() -> None:
    """A holdout that took the IPI with interrupts on (preempt-off) and soft-masks later in the same
    GP is not sent another one: resched_curr() returns while TIF_NEED_RESCHED is set and the
    irq_work is queued once per GP - so it stays reachable by the soft-NMI."""
    env, cpus, _h, m = _model()
    env.call_at(100.5, lambda: cpus.set_ctx(3, Ctx.PREEMPT_OFF))
    env.call_at(112.5, lambda: cpus.set_ctx(3, Ctx.IRQS_SOFT_OFF))
    env.run(until=121.0)
    assert m.rcu.resched_ipis == 1 and not cpus.cpus[3].hard_dis and cpus.soft_nmi_reachable(3)


def test_resched_ipi_waits_for_a_cpu_that_can_run_the_gp_kthread() -> None:
    env, cpus, _h, m = _model()
    env.call_at(100.5, lambda: cpus.set_ctx(3, Ctx.IRQS_SOFT_OFF))
    for c in (0, 1, 2):
        env.call_at(110.5, lambda c=c: cpus.set_ctx(c, Ctx.PREEMPT_OFF))
        env.call_at(114.0, lambda c=c: cpus.set_ctx(c, Ctx.KERNEL))
    env.run(until=113.9)
    assert m.rcu.resched_deferred and not cpus.cpus[3].hard_dis
    env.run(until=114.001)
    assert not m.rcu.resched_deferred and cpus.cpus[3].hard_dis and m.rcu.resched_ipis == 1


def test_resched_ipi_is_sent_with_stall_warnings_suppressed() -> None:
    """rcu_cpu_stall_suppress silences check_cpu_stall() only; the FQS passes send the IPIs."""
    env, cpus, _h, _m = _model(kernel={"rcu_cpu_stall_suppress": 1})
    env.call_at(100.5, lambda: cpus.set_ctx(3, Ctx.IRQS_SOFT_OFF))
    env.run(until=111.02)
    assert cpus.cpus[3].hard_dis


def test_irq_to_a_busy_cpu_stays_pending() -> None:
    """A CPU the kernel holds hard-disabled (an NMI-IPI sender) does not take the interrupt in its
    soft-masked state: it is hard-disabled already, and the interrupt waits for the spin's end."""
    _env, cpus, _h, m = _model()
    cpus.set_ctx(2, Ctx.IRQS_SOFT_OFF)
    m.set_busy(2, True)
    m.irq.deliver(2)
    assert not cpus.cpus[2].hard_dis and m.irq.hard_masked == 0
    m.set_busy(2, False)
    m.irq.deliver(2)
    assert cpus.cpus[2].hard_dis and m.irq.hard_masked == 1


# -- stop_machine and busy CPUs -----------------------------------------------------------------------
def test_stop_machine_waits_for_a_busy_cpu() -> None:
    """A CPU spinning hard-disabled in an RCU report (busy) cannot run its stopper: it arrives only
    when the spin ends, and the rendezvous completes then."""
    _env, _cpus, hooks, m = _model()
    m.set_busy(2, True, forwarded=False)
    done = hooks.stop_machine(range(4))
    assert not done.triggered and hooks.rendezvous == {0, 1, 3}
    m.set_busy(2, False, forwarded=False)
    assert done.triggered and hooks.rendezvous == set()


def test_an_arrived_cpu_that_turns_busy_acks_late() -> None:
    """An arrived CPU (interrupts on in MULTI_STOP_PREPARE) that reports an RCU stall from its tick
    acks MULTI_STOP_DISABLE_IRQ only when the report's spin ends."""
    _env, cpus, hooks, m = _model()
    cpus.set_ctx(1, Ctx.PREEMPT_OFF)  # the straggler
    done = hooks.stop_machine(range(4))
    assert hooks.rendezvous == {0, 2, 3}
    m.set_busy(0, True, forwarded=False)
    cpus.set_ctx(1, Ctx.KERNEL)  # the straggler's stopper runs
    assert not done.triggered
    m.set_busy(0, False, forwarded=False)
    assert done.triggered and all(cpus.cpus[c].ctx == Ctx.IRQS_HARD_OFF for c in range(4))


@pytest.mark.parametrize(
    ("version", "qs"),
    [("5.4", False), ("5.5", True), ("5.14", True), ("6.6.3", True), ("6.13", True), ("6.14", False)],
)
def test_rendezvous_quiescent_states_by_version(version: str, qs: bool) -> None:
    """rcu_momentary_dyntick_idle() in every pass of multi_cpu_stop's loop: 366237e7b083 (v5.5);
    moved under curstate > MULTI_STOP_PREPARE by c861cac950fb (v6.14): before and after, CPUs
    waiting in MULTI_STOP_PREPARE pass no quiescent state."""
    _env, cpus, hooks, m = _model(kernel={"version": version})
    assert m.cfg.stop_machine_rcu_qs is qs
    cpus.set_ctx(1, Ctx.PREEMPT_OFF)
    hooks.stop_machine(range(4))
    assert m.nonqs == ({1} if qs else {0, 1, 2, 3})


# -- the IPI path: doorbells to SMT siblings -------------------------------------------------------
@pytest.mark.parametrize(
    ("version", "sender", "hard"),
    [
        ("6.12", 1, False),  # CPU 1 and 3 share core 0 at SMT4: a doorbell, not hard-masking
        ("6.12", 4, True),  # another core: through the interrupt controller
        ("5.8", 1, True),  # before v5.9 XIVE sends every IPI through the controller
    ],
)
def test_an_ipi_to_an_smt_sibling_is_a_doorbell_from_v5_9(version: str, sender: int, hard: bool) -> None:
    env, cpus, _h, m = _model(n=8, kernel={"version": version})
    m.set_topology((0,) * 8, smt=4)
    env.call_at(1.0, lambda: cpus.set_ctx(3, Ctx.IRQS_SOFT_OFF))
    env.call_at(2.0, lambda: m.irq.ipi(sender, 3))
    env.run(until=3.0)
    assert cpus.cpus[3].hard_dis is hard
    assert cpus.soft_nmi_reachable(3) is not hard


@pytest.mark.parametrize(("smt", "hard"), [(4, False), (1, True)])
def test_the_backtrace_ipi_of_a_sibling_reporter_leaves_the_holdout_soft_masked(smt: int, hard: bool) -> None:
    """A soft-masked CPU 3 dumped by CPU 2: at SMT4 (the same core) the safe NMI IPI is a
    doorbell and CPU 3 stays reachable by its soft-NMI; at SMT1 (another core) it is hard-disabled
    (IrqArrivals.ipi)."""
    env, cpus, _h, m = _model(n=8, kernel={"version": "6.12"})
    m.set_topology((0,) * 8, smt=smt)
    env.call_at(1.0, lambda: cpus.set_ctx(3, Ctx.IRQS_SOFT_OFF))
    env.call_at(2.0, lambda: m.rcu.bt.dump(2, [3], env.now, lambda c: True, lambda t: None))
    env.run(until=2.5)
    assert cpus.cpus[3].hard_dis is hard

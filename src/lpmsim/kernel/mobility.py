"""The pseries partition-migration flow in the guest.

Mirrors arch/powerpc/platforms/pseries/mobility.c as of v6.6 (``pseries_migrate_partition``,
``wait_for_vasi_session_suspending``, ``pseries_suspend``, ``do_join``, ``prod_others``,
``post_mobility_fixup``, ``wait_for_vasi_session_completed``); ``version = "pre-v6.0"`` drops the
factor and the completion wait (before 882c0d1704cf / 118b1366930c).

1. drmgr's request arrives at t=0 (ASSUMPTION: when the hypervisor starts the migration).  v6.0+:
   ``pseries_migrate_partition`` reads ``nmi_wd_lpm_factor`` on entry (``factor =
   nmi_wd_lpm_factor``), so a value written later is not seen by this migration.  Then it polls
   H_VASI_STATE until SUSPENDING, sleeping ``ssleep(1)`` between polls.
2. v6.0+: ``watchdog: Set the NMI watchdog timeout factor to %llu%%`` and
   ``lockup_detector_reconfigure()`` (factor != 0 only).
3. ``stop_machine(do_join)`` on every CPU (``GuestHooks.stop_machine``): all CPUs hard-disabled;
   every CPU H_JOINs (stalled in the hypervisor); the last joiner (ASSUMPTION: the highest-numbered
   CPU) prints ``mobility: calling ibm,suspend-me on CPU %i`` and suspends the partition
   (``Migration.guest_suspend()``).  All CPUs stay stalled through the blackout.
4. Resume: the suspender prints ``mobility: CPU %u waking all threads`` and H_PRODs the others
   one after another (``hprod_us`` each, ASSUMPTION); every CPU then calls
   ``rcu_cpu_stall_reset()`` and ``touch_nmi_watchdog()`` (prodded CPUs when they run, the waker
   after its last H_PROD); stop_machine ends when all have.
5. ``post_mobility_fixup()`` on the drmgr CPU: ibm,activate-firmware, ibm,update-nodes,
   ibm,update-properties RTAS calls (``GuestHooks.rtas_call``), base durations lognormal
   (``kernel.post_mobility_rtas``, ASSUMPTION), one after another.
6. v6.0+: ``mobility: waiting for memory transfer to complete...``, poll with ``msleep(500)``
   between polls until COMPLETED, ``mobility: memory transfer completed.``, then the factor back
   to 0.

Sleeps (kernel/time/timer.c ``msleep``, ``schedule_timeout``, ``calc_index``; ``ssleep(s)`` is
``msleep(s * 1000)``): ``msleep(m)`` sleeps ``msecs_to_jiffies(m) + 1`` jiffies from the current
jiffy, on the timer wheel, which rounds a timer of 63 jiffies or more up to its level's granularity
(``wheel_expiry``).  At HZ=100 from a tick: ``ssleep(1)`` = 101 jiffies -> level 1 (8 jiffies) ->
the next multiple of 8 after ``j + 101`` (1.04 s from t=0); ``msleep(500)`` = 51 jiffies, level 0,
exact: it wakes at the tick ``j + 51`` (0.51 s from a tick, 0.50-0.51 s from inside a jiffy).

A mitigation policy (``LpmPolicy``; the mechanisms are in ``lpmsim.policies``) is called at the
points where the proposed kernel changes act: drmgr's request (t=0, where ``lpmsim guard``'s pre
phase runs; the kernel reads the factor right after it), SUSPENDING (where the factor is set),
just before stop_machine, after resume, after the device-tree update, at COMPLETED, and when the
flow returns to drmgr (the guard's post phase).
A policy that needs to know when the transfer completes makes a pre-v6.0 flow wait for it too, as
Laurent Dufour's v1 series did (its patch 1 is 882c0d1704cf).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Protocol

from lpmsim.engine.core import Event
from lpmsim.guest.cpustate import Task
from lpmsim.hypervisor.vasi import VasiState
from lpmsim.kernel.hooks import stopper_pid
from lpmsim.kernel.wq_watchdog import wheel_expiry

if TYPE_CHECKING:
    from lpmsim.hypervisor.migration import Migration
    from lpmsim.kernel.model import KernelModel
    from lpmsim.kernel.timing import Clock

DRMGR_PID = 4242
DRMGR_TASK = Task("drmgr", DRMGR_PID)


def msecs_to_jiffies(msecs: int, hz: int) -> int:
    """include/linux/jiffies.h ``msecs_to_jiffies``: rounded up to whole jiffies."""
    return -(-msecs * hz // 1000)


def msleep_wake(t: float, msecs: int, clock: Clock) -> float:
    """When ``msleep(msecs)`` called at ``t`` returns: ``schedule_timeout(msecs_to_jiffies(msecs)
    + 1)`` from the current jiffy, the timer filed in the wheel (rounded up at levels >= 1)."""
    now_j = clock.jiffies(t)
    j = wheel_expiry(now_j, msecs_to_jiffies(msecs, clock.hz) + 1)
    return max(t, clock.jiffy_time(j))


class LpmPolicy(Protocol):
    """What a mitigation policy does at each point of the flow (times are ``env.now``)."""

    def factor_pct(self) -> int: ...

    def waits_for_completion(self) -> bool: ...

    def at_request(self, t: float) -> None: ...

    def before_stop_machine(self, t: float) -> None: ...

    def after_resume(self, t: float) -> None: ...

    def after_fixup(self, t: float) -> None: ...

    def at_completed(self, t: float) -> None: ...

    def at_return(self, t: float) -> None: ...


class FlowHooks:
    """The points of the flow where a policy may act, each doing nothing until overridden."""

    def at_request(self, t: float) -> None:
        pass

    def before_stop_machine(self, t: float) -> None:
        pass

    def after_resume(self, t: float) -> None:
        pass

    def after_fixup(self, t: float) -> None:
        pass

    def at_completed(self, t: float) -> None:
        pass

    def at_return(self, t: float) -> None:
        pass


class KernelPolicy(FlowHooks):
    """No policy beyond the kernel version's own: the factor read from ``kernel.nmi_wd_lpm_factor``
    on entry to ``pseries_migrate_partition`` (set at SUSPENDING) on v6.0+, the completion wait on
    v6.0+."""

    def __init__(self, m: KernelModel) -> None:
        self.m = m

    def factor_pct(self) -> int:
        return self.m.kernel_lpm_factor()

    def waits_for_completion(self) -> bool:
        return self.m.cfg.waits_for_completion


class Mobility:
    def __init__(self, m: KernelModel, mig: Migration, policy: LpmPolicy | None = None) -> None:
        self.m = m
        self.mig = mig
        self.policy: LpmPolicy = policy if policy is not None else KernelPolicy(m)
        self.times: dict[str, float | None] = {
            "suspending_seen_s": None,
            "factor_set_s": None,
            "suspend_s": None,
            "resume_s": None,
            "fixup_done_s": None,
            "completed_seen_s": None,
            "factor_cleared_s": None,
            "end_s": None,
        }
        self.done = m.env.event()

    def _emit(self, text: str, caller: str = f"T{DRMGR_PID}") -> None:
        self.m.log.emit(self.m.env.now, text, caller)

    def _vasi(self) -> VasiState:
        """H_VASI_STATE."""
        return self.mig.state

    def _msleep(self, msecs: int) -> Event:
        """``msleep()``: drmgr in TASK_UNINTERRUPTIBLE until it wakes (lpmsim.kernel.hung_task)."""
        env = self.m.env
        self._sleep_d("msleep")
        ev = env.timeout(msleep_wake(env.now, msecs, self.m.clock) - env.now)
        ev.add_callback(lambda _e: self.m.states.unblock_task(DRMGR_PID))
        return ev

    def _sleep_d(self, on: str) -> None:
        self.m.states.block_task(DRMGR_TASK, on)

    def run(self) -> Generator[Event, Any, None]:
        m, mig = self.m, self.mig
        env, cfg = m.env, m.cfg
        policy = self.policy
        policy.at_request(env.now)
        # pseries_migrate_partition(): factor = nmi_wd_lpm_factor, read on entry (v6.0+)
        factor = policy.factor_pct()
        while self._vasi() == VasiState.ENABLED:
            yield self._msleep(1000)  # ssleep(1)
        if self._vasi() != VasiState.SUSPENDING:
            self._emit(f"mobility: unexpected H_VASI_STATE result {int(self._vasi())}")
            return
        self.times["suspending_seen_s"] = env.now
        if m.dead:
            return
        if factor:
            m.set_lpm_factor(env.now, factor, f"T{DRMGR_PID}")
            self.times["factor_set_s"] = env.now
        policy.before_stop_machine(env.now)
        # stop_machine(do_join, ...) on every online CPU; drmgr waits in wait_for_completion()
        self._sleep_d("stop_machine")
        yield m.hooks.stop_machine(range(m.n))
        if m.dead:
            return
        suspender = m.n - 1
        self._emit(f"mobility: calling ibm,suspend-me on CPU {suspender}", f"T{stopper_pid(suspender)}")
        for c in range(m.n):
            m.states.set_stalled(c, True, "suspend")
        self.times["suspend_s"] = env.now
        mig.guest_suspend()
        yield mig.resumed
        if m.dead:
            return
        self.times["resume_s"] = env.now
        m.states.set_stalled(suspender, False, "suspend")
        self._emit(f"mobility: CPU {suspender} waking all threads", f"T{stopper_pid(suspender)}")
        step = cfg.hprod_us * 1e-6
        for c in range(m.n):
            if c == suspender:
                continue
            if step > 0:
                yield env.timeout(step)
                if m.dead:
                    return
            m.states.set_stalled(c, False, "suspend")
            m.rcu_cpu_stall_reset(env.now)
            m.touch_nmi_watchdog(c, env.now)
        m.rcu_cpu_stall_reset(env.now)
        m.touch_nmi_watchdog(suspender, env.now)
        m.hooks.release_machine()
        m.states.unblock_task(DRMGR_PID)  # the last cpu_stop_signal_done() completes drmgr's wait
        if m.dead:
            return
        policy.after_resume(env.now)
        # post_mobility_fixup()
        rng = m.rng
        for spec in cfg.post_mobility_rtas:
            for _ in range(spec.count):
                base = (
                    spec.median_s * math.exp(spec.sigma * float(rng.standard_normal()))
                    if spec.sigma
                    else spec.median_s
                )
                yield m.hooks.rtas_call(cfg.drmgr_cpu, base)
                if m.dead:
                    return
        self.times["fixup_done_s"] = env.now
        policy.after_fixup(env.now)
        if m.dead:
            return
        if policy.waits_for_completion():
            self._emit("mobility: waiting for memory transfer to complete...")
            while self._vasi() != VasiState.COMPLETED:
                yield self._msleep(500)
                if m.dead:
                    return
            self._emit("mobility: memory transfer completed.")
            self.times["completed_seen_s"] = env.now
            policy.at_completed(env.now)
            if m.dead:
                return
        if m.hard.pct:
            m.set_lpm_factor(env.now, 0, f"T{DRMGR_PID}")
            self.times["factor_cleared_s"] = env.now
        self.times["end_s"] = env.now
        policy.at_return(env.now)
        self.done.succeed()

"""Shared time helpers: timebase ticks, jiffies, the 2^30 ns soft-lockup unit, one-shot alarms.

The soft-lockup timestamps are ``running_clock() >> 30`` (kernel/watchdog.c ``get_timestamp``).
On pseries, arch/powerpc/kernel/time.c overrides ``running_clock()``: on an LPAR with
CPU_FTR_ARCH_207S (POWER8 and later) it is ``tb_to_ns(get_vtb() - boot_tb)``, the Virtual Time
Base, which the hypervisor saves and restores per partition (per subcore: KVM 88b02cf97bb7).
``RunningClock`` gives both readings (``kernel.softlockup_clock``): ``timebase`` counts wall time;
``vtb`` stops while the vCPU is not dispatched — stalled in the hypervisor as a whole, and for the
fluid model's ``steal_frac`` share — so each CPU's clock is ``timebase - S_c(t)``, with S_c the
vCPU's cumulative not-dispatched time (the same integral the dispatch trace log keeps,
``lpmsim.kernel.dtl.Dtl``, here always on).  Whether PowerVM's VTB advances while a vCPU waits on
a demand fault is not public: ASSUMPTION (docs/model/kernel.md), ``timebase`` by default.

The per-CPU watchdog hrtimers (powerpc heartbeat and soft-lockup sampler) are started together
by ``lockup_detector_reconfigure()`` and re-armed with ``hrtimer_forward_now()``, so each CPU's
timer stays on the grid ``t0 + k*P`` (``t0`` the last (re)start, ``P = watchdog_thresh*2/5``).
Nothing is scheduled per CPU per period: detectors compute from the grid when a report becomes
possible and set an ``Alarm`` there.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from lpmsim.engine.core import Environment
from lpmsim.guest.cpustate import CpuStates
from lpmsim.kernel.dtl import Dtl

EPS = 1e-9


class Alarm:
    """A re-settable one-shot callback that never piles up stale events.

    ``set(t)`` schedules only when ``t`` is earlier than the pending time; a later time is left
    to the pending event, whose callback re-evaluates the state and sets the alarm again.
    """

    __slots__ = ("at", "env", "fn", "side")

    def __init__(self, env: Environment, fn: Callable[[float], None]) -> None:
        self.env = env
        self.fn = fn
        self.at = math.inf
        # The planned calls wait out of the event heap (``SideCalls``: the same events, in the
        # same order): an alarm's superseded entries stay planned and fire as no-ops.
        self.side = env.side

    def set(self, t: float) -> None:
        now = self.env.now
        if now > t:  # ``t = max(t, now)`` (which keeps t unless now is greater)
            t = now
        if t < self.at:
            self.at = t
            self.side.call_at(t, functools.partial(self._fire, t))

    def _fire(self, t: float) -> None:
        if self.at != t:
            return
        self.at = math.inf
        self.fn(t)


class Clock:
    """Conversions between simulated seconds and the kernel's clocks."""

    def __init__(self, uptime_at_start_s: float, tb_freq_hz: int, hz: int) -> None:
        self.offset = uptime_at_start_s
        self.tb_freq = tb_freq_hz
        self.hz = hz

    def tb(self, t: float) -> int:
        """Timebase value (get_tb()) at simulated time t."""
        return round((self.offset + t) * self.tb_freq)

    def ms(self, dtb: int) -> int:
        """``tb_to_ns(dtb) / 1000000``."""
        return (dtb * 1000) // self.tb_freq

    def jiffies(self, t: float) -> int:
        return math.floor((self.offset + t) * self.hz + EPS)

    def jiffy_time(self, j: int) -> float:
        return j / self.hz - self.offset

    def next_jiffy_time(self, t: float) -> float:
        """Time of the first scheduling-clock tick at or after t."""
        j = math.ceil((self.offset + t) * self.hz - EPS)
        return j / self.hz - self.offset

    def next_jiffy_after(self, t: float) -> float:
        """Time of the first tick strictly after t."""
        return (self.jiffies(t) + 1) / self.hz - self.offset

    def softlockup_units(self, t: float) -> int:
        """``running_clock() >> 30`` (soft-lockup timestamps, ~1.074 s units)."""
        return round((self.offset + t) * 1e9) >> 30


class Grid:
    """The hrtimer grid ``t0 + k*P`` (k >= 1) of the watchdog timers."""

    def __init__(self, t0: float, period: float) -> None:
        self.t0 = t0
        self.p = period

    def last_le(self, t: float) -> float | None:
        """Last grid point <= t (None before the first one)."""
        if self.p <= 0:
            return None
        k = math.floor((t - self.t0) / self.p + EPS)
        return self.t0 + k * self.p if k >= 1 else None

    def next_after(self, t: float) -> float:
        """First grid point strictly after t."""
        if self.p <= 0:
            return math.inf
        k = math.floor((t - self.t0) / self.p + EPS) + 1
        if k < 1:  # ``max(k, 1)`` without the call (k an int)
            k = 1
        return self.t0 + k * self.p


SOFTLOCKUP_SHIFT = 30  # get_timestamp(): running_clock() >> 30


class VtbClock(Dtl):
    """Each vCPU's cumulative not-dispatched time S_c(t) (``Dtl``'s integral, from boot of the model),
    telling ``on_rate(cpu, t)`` after the rate at which its VTB runs has changed."""

    def __init__(self, states: CpuStates, now: float, on_rate: Callable[[int, float], None]) -> None:
        self.on_rate = on_rate
        super().__init__(states, now)

    def _on_change(self, c: int, t: float) -> None:
        st = self.states.cpus[c]
        r = 1.0 if st.stalled else st.steal_frac  # Dtl.rate(c), inline: this runs at every change
        rs = self._r[c]
        if r == rs[-1]:
            return
        super()._on_change(c, t)
        self.on_rate(c, t)


class RunningClock:
    """``running_clock()`` per CPU as the soft-lockup detector reads it, in ~1.074 s units.

    ``timebase``: ``Clock.softlockup_units``.  ``vtb``: the same of ``t - S_c(t)``; ``rate(c)`` is
    how fast the CPU's clock runs now (1 - its not-dispatched share), to plan reports ahead;
    ``on_rate`` is told when it changes."""

    def __init__(
        self, clock: Clock, states: CpuStates, now: float, on_rate: Callable[[int, float], None] | None
    ) -> None:
        self.clock = clock
        self.vtb: VtbClock | None = None if on_rate is None else VtbClock(states, now, on_rate)

    def seconds(self, c: int, t: float) -> float:
        """The clock of CPU c at simulated time t, in simulated seconds (before the uptime offset)."""
        v = self.vtb
        return t if v is None else t - v.steal(c, t)

    def units(self, c: int, t: float) -> int:
        """``running_clock() >> 30`` on CPU c at t."""
        v = self.vtb
        if v is None:
            return round((self.clock.offset + t) * 1e9) >> SOFTLOCKUP_SHIFT
        return round((self.clock.offset + t - v.steal(c, t)) * 1e9) >> SOFTLOCKUP_SHIFT

    def rate(self, c: int) -> float:
        v = self.vtb
        return 1.0 if v is None else 1.0 - v.rate(c)

"""The dispatch trace log (DTL) as the guest kernel would read it: a per-vCPU steal clock.

On a shared-processor pseries partition the hypervisor appends a ``struct dtl_entry`` to a per-vCPU
buffer each time it dispatches the vCPU (arch/powerpc/include/asm/lppaca.h, ``asm/dtl.h`` in newer
trees; buffers registered in arch/powerpc/platforms/pseries/dtl.c and lpar.c): why the vCPU was
preempted (``preempt_reason``; the perf vpa-dtl decoder, tools/perf/util/powerpc-vpadtl.c, names
code 5 "migration/hibernation page fault" and 6 "virtual memory page fault"), the time it spent
waiting, ready and enqueued (``waiting_to_ready_time``, ``ready_to_enqueue_time``,
``enqueue_to_dispatch_time``, in timebase ticks) and the timebase at dispatch.  The kernel adds
the last two up as stolen time in ``scan_dispatch_log()`` (arch/powerpc/kernel/time.c; moved to
platforms/pseries/dtl.c with ``pseries_calculate_stolen_time`` in recent trees); the VPA also keeps
cumulative counters (``enqueue_dispatch_tb`` + ``ready_enqueue_tb``) that
``pseries_paravirt_steal_clock()`` (platforms/pseries/lpar.c) returns in ns.

What the model keeps: S_c(t), the seconds vCPU c was not dispatched because it was stalled in the
hypervisor, cumulative since the log was enabled.  It grows at rate 1 while the vCPU is
``stalled`` (a demand fault on a page not yet migrated, the suspend) and at ``steal_frac`` (the
fluid model's share of short faults, ``CpuStates.set_steal_frac``) otherwise.  It is stored as
breakpoints per vCPU — (time, S, rate) at every change of rate — so memory grows with the stall
transitions and a query at any time since the log was enabled is a bisection, O(log n).

ASSUMPTION (documented in docs/policies.md): the whole not-dispatched interval of a fault counts,
as the kernel change would count it from the entry's three intervals for the page-fault preempt
reasons; a stall still in progress counts up to the query time.  On PowerVM another CPU sees a
stall in progress only as an odd VPA yield count (``vcpu_is_preempted()``); its entry is logged when
the vCPU is dispatched again.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right

from lpmsim.guest.cpustate import CpuStates

EPS = 1e-9


class Dtl:
    """Per-vCPU cumulative hypervisor-stall time S_c(t), fed by ``CpuStates`` change notification."""

    def __init__(self, states: CpuStates, now: float) -> None:
        self.states = states
        self.t0 = now
        n = len(states)
        # per vCPU, from each breakpoint on: its time, S there, the rate (flat float arrays: 24 bytes
        # per stall transition)
        self._t = [array("d", [now]) for _ in range(n)]
        self._s = [array("d", [0.0]) for _ in range(n)]
        self._r = [array("d", [self.rate(c)]) for c in range(n)]
        states.subscribe(self._on_change)

    def rate(self, c: int) -> float:
        """Current rate at which vCPU c accumulates hypervisor-stall time."""
        st = self.states.cpus[c]
        return 1.0 if st.stalled else st.steal_frac

    def _on_change(self, c: int, t: float) -> None:
        r = self.rate(c)
        ts, ss, rs = self._t[c], self._s[c], self._r[c]
        if r == rs[-1]:
            return
        if t <= ts[-1]:
            rs[-1] = r  # a second change at the same instant: the rate from here is the last one
            return
        ss.append(ss[-1] + rs[-1] * (t - ts[-1]))
        ts.append(t)
        rs.append(r)

    # -- queries -------------------------------------------------------------------------------------
    def steal(self, c: int, t: float) -> float:
        """S_c(t): seconds of hypervisor stall of vCPU c from enabling to t (0 before enabling)."""
        ts = self._t[c]
        if t <= ts[0]:
            return 0.0
        i = bisect_right(ts, t) - 1
        return self._s[c][i] + self._r[c][i] * (t - ts[i])

    def window(self, c: int, t0: float, t1: float) -> float:
        """Hypervisor-stall seconds of vCPU c in [t0, t1]."""
        if t1 <= t0:
            return 0.0
        return max(0.0, self.steal(c, t1) - self.steal(c, t0))

    def guest(self, c: int, t0: float, t1: float) -> float:
        """Seconds vCPU c was dispatched (ran guest code) in [t0, t1]."""
        return max(0.0, (t1 - t0) - self.window(c, t0, t1))

    def reach(self, c: int, t0: float, now: float, guest_s: float) -> float:
        """Earliest time >= now at which the guest time of vCPU c since t0 can reach ``guest_s`` if
        its current rate stays (inf while it is stalled as a whole)."""
        g = self.guest(c, t0, now)
        if g >= guest_s - EPS:
            return now
        r = self.rate(c)
        if r >= 1.0:
            return math.inf
        return now + (guest_s - g) / (1.0 - r)

    def transitions(self, c: int) -> int:
        """Number of rate changes stored for vCPU c (memory use)."""
        return len(self._t[c]) - 1

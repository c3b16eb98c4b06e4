"""``--calibrate``: lower bounds on stall durations implied by the reports in a log.

Each report proves that something did *not* happen for at least some time (kernel-facts.md 1, 3-6):

* soft lockup "stuck for Ss": the CPU's stopper thread (the soft-lockup feed) did not run for at least
  S units of 2^30 ns (kernel/watchdog.c get_timestamp() = running_clock() >> 30), i.e. >= S x 1.074 s;
* powerpc hard lockup with "(Nms ago)": the CPU took no heartbeat (hrtimer) interrupt for >= N ms; without
  that line, >= the detector timeout (10 s local, 15 s SMP checker, x (1 + factor/100) while the LPM
  factor is set; watchdog_thresh = 10 assumed); perf NMI detector: >= watchdog_thresh (10 s assumed);
* RCU stall "t=J jiffies": the grace period was held up >= J / HZ s; HZ <= 1000, so >= J / 1000 s;
* workqueue lockup "stuck for Ss": the pool made no progress for >= S s;
* hung task "more than N seconds": the task was not scheduled for >= N s;
* "didn't respond to backtrace IPI": the CPU did not take an interrupt for >= 5 s (powerpc
  raise_backtrace_ipi waits 5 s);
* "memory access stalled N s in the hypervisor" (the annotate policy, docs/policies.md): the vCPU was
  not dispatched for >= N s (N printed as %u).

Values are in seconds, the unit of the scenario's time fields (``migration.blackout_s``,
``sim.max_time_s``); ``constrains`` names what in the simulated guest must be at least that long.
"""

from __future__ import annotations

from lpmsim.triage.events import Bound, Event, Triage

SOFTLOCKUP_UNIT_S = 2**30 / 1e9
HZ_MAX = 1000
WATCHDOG_THRESH_S = 10.0


def _hardlockup(ev: Event, factor_pct: int) -> Bound | None:
    if ev.duration_s is not None:
        return Bound(
            ev.line,
            ev.type,
            ev.cpus,
            "time without a heartbeat interrupt",
            ev.duration_s,
            "s",
            "vCPU stall with interrupts off or stalled in the hypervisor",
            "companion line '(Nms ago)'",
        )
    scale = 1.0 + factor_pct / 100.0
    if ev.variant in ("ppc_other", "ppc_old_other"):
        lb = 1.5 * WATCHDOG_THRESH_S * scale
        basis = (
            f"SMP-checker timeout 1.5 x watchdog_thresh x (1 + {factor_pct}%/100), watchdog_thresh=10 assumed"
        )
    elif ev.variant.startswith("ppc"):
        lb = WATCHDOG_THRESH_S * scale
        basis = f"local timeout watchdog_thresh x (1 + {factor_pct}%/100), watchdog_thresh=10 assumed"
    else:
        lb = WATCHDOG_THRESH_S
        basis = "perf NMI period = watchdog_thresh (10 assumed)"
    return Bound(
        ev.line,
        ev.type,
        ev.cpus,
        "time without a timer interrupt",
        lb,
        "s",
        "vCPU stall with interrupts off or stalled in the hypervisor",
        basis,
    )


def bounds(tri: Triage) -> list[Bound]:
    """One lower bound per detector report that implies one, in file order."""
    out: list[Bound] = []
    factor = 0
    for ev in tri.events:
        if ev.type == "lpm_phase" and "timeout factor to " in ev.reason:
            digits = ev.reason.split("timeout factor to ", 1)[1].split("%", 1)[0]
            factor = int(digits[:9]) if digits.isdigit() else factor
        elif ev.type == "softlockup" and ev.duration_s is not None:
            out.append(
                Bound(
                    ev.line,
                    ev.type,
                    ev.cpus,
                    "time without the soft-lockup feed (stopper) running",
                    round(ev.duration_s * SOFTLOCKUP_UNIT_S, 3),
                    "s",
                    "vCPU time without scheduling (stall or preemption off)",
                    "stuck for S x 2^30 ns",
                )
            )
        elif ev.type == "hardlockup":
            b = _hardlockup(ev, factor)
            if b is not None:
                out.append(b)
        elif ev.type == "rcu_stall" and ev.jiffies is not None:
            out.append(
                Bound(
                    ev.line,
                    ev.type,
                    ev.cpus,
                    "grace period held up",
                    ev.jiffies / HZ_MAX,
                    "s",
                    "vCPU time without an RCU quiescent state",
                    f"t={ev.jiffies} jiffies at HZ <= 1000",
                )
            )
        elif ev.type == "workqueue_lockup" and ev.duration_s is not None:
            out.append(
                Bound(
                    ev.line,
                    ev.type,
                    ev.cpus,
                    "pool without progress",
                    ev.duration_s,
                    "s",
                    "worker pool stall (its CPU stalled or busy)",
                    "stuck for S s",
                )
            )
        elif ev.type == "hung_task" and ev.duration_s is not None:
            out.append(
                Bound(
                    ev.line,
                    ev.type,
                    ev.cpus,
                    f"task {ev.task} not scheduled",
                    ev.duration_s,
                    "s",
                    "task blocked in D state (I/O or lock held across the stall)",
                    "blocked for more than N seconds",
                )
            )
        elif ev.type == "hv_stall" and ev.duration_s is not None:
            out.append(
                Bound(
                    ev.line,
                    ev.type,
                    ev.cpus,
                    "time not dispatched by the hypervisor",
                    ev.duration_s,
                    "s",
                    "vCPU stalled in the hypervisor (demand faults on pages not yet migrated)",
                    "memory access stalled N s (whole seconds, from the dispatch trace log)",
                )
            )
        elif ev.type == "nmi_backtrace" and ev.variant == "no_response":
            out.append(
                Bound(
                    ev.line,
                    ev.type,
                    ev.cpus,
                    "time without taking an IPI",
                    5.0,
                    "s",
                    "vCPU stall with interrupts off or stalled in the hypervisor",
                    "raise_backtrace_ipi waits 5 s",
                )
            )
    return out

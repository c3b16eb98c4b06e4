"""Run-time values of the detector sysctls, and what writing one does.

The scenario's ``kernel`` section gives the values at boot; mitigation policies (and ``lpmsim
guard``, which writes the same files on a real partition) change some of them during the
migration.  Each write mirrors its kernel handler:

* ``kernel.watchdog_thresh``, ``kernel.nmi_watchdog``, ``kernel.soft_watchdog`` —
  kernel/watchdog.c ``proc_watchdog_thresh`` / ``proc_nmi_watchdog`` / ``proc_soft_watchdog`` ->
  ``proc_watchdog_update()`` -> ``lockup_detector_reconfigure()``: both detectors stopped, the
  sample period and timeouts recomputed (powerpc ``watchdog_calc_timeouts``), and restarted, so
  every CPU's heartbeat and soft-lockup timestamp is re-seeded.
* ``kernel.nmi_wd_lpm_factor`` — a plain variable read by mobility.c at SUSPENDING.
* ``rcupdate.rcu_cpu_stall_suppress`` — read by ``check_cpu_stall()`` at every tick; nothing is
  reset when it is cleared again (a grace period already stalled long enough reports at once).
* ``workqueue.watchdog_thresh`` — kernel/workqueue.c ``wq_watchdog_set_thresh``: the timer is
  deleted; a non-zero value resets every touch stamp and re-arms the timer ``thresh`` s ahead.
* ``kernel.hung_task_timeout_secs`` — kernel/hung_task.c ``proc_dohung_task_timeout_secs``
  wakes khungtaskd, which scans once ``hung_last_checked + interval`` has passed.

ASSUMPTION: a write takes effect at once; the kernel runs parts of the reconfiguration on each
CPU (``smp_call_on_cpu``), which a CPU stalled in the hypervisor would delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lpmsim.kernel.config import Kernel

if TYPE_CHECKING:
    from lpmsim.kernel.model import KernelModel

# sysctl (or module parameter) name -> attribute of ``Sysctls``
NAMES: dict[str, str] = {
    "kernel.watchdog_thresh": "watchdog_thresh",
    "kernel.nmi_watchdog": "nmi_watchdog",
    "kernel.soft_watchdog": "soft_watchdog",
    "kernel.nmi_wd_lpm_factor": "nmi_wd_lpm_factor",
    "rcupdate.rcu_cpu_stall_suppress": "rcu_cpu_stall_suppress",
    "workqueue.watchdog_thresh": "wq_watchdog_thresh",
    "kernel.hung_task_timeout_secs": "hung_task_timeout_secs",
}


@dataclass
class Sysctls:
    watchdog_thresh: int
    nmi_watchdog: int
    soft_watchdog: int
    nmi_wd_lpm_factor: int
    rcu_cpu_stall_suppress: int
    wq_watchdog_thresh: int
    hung_task_timeout_secs: int

    @classmethod
    def from_cfg(cls, cfg: Kernel) -> Sysctls:
        return cls(**{attr: int(getattr(cfg, attr)) for attr in NAMES.values()})

    def read(self, name: str) -> int:
        return int(getattr(self, NAMES[name]))


def write(m: KernelModel, name: str, value: int, t: float) -> None:
    """Write sysctl ``name`` at time ``t`` with the side effects of its kernel handler."""
    attr = NAMES.get(name)
    if attr is None:
        raise KeyError(f"unknown sysctl {name!r}; modelled: {', '.join(NAMES)}")
    sys = m.sys
    if getattr(sys, attr) == value:
        return  # proc handlers act only on a change (proc_watchdog_common compares old and new)
    setattr(sys, attr, value)
    if attr in ("watchdog_thresh", "nmi_watchdog", "soft_watchdog"):
        m.watchdog_update(t)
    elif attr == "rcu_cpu_stall_suppress":
        m.rcu.set_suppress(value, t)
    elif attr == "wq_watchdog_thresh":
        m.wq.set_thresh(value, t)
    elif attr == "hung_task_timeout_secs":
        m.hung.set_timeout(value, t)

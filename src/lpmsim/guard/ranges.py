"""The values the kernel accepts for each setting the guard knows, for range-checking ``[overrides]``.

A value outside these bounds is refused at ``check`` with the kernel's own range instead of failing
at ``pre`` (the kernel returns ``EINVAL``) or, worse, being accepted and wrapping.  Sources:

* ``kernel.watchdog_thresh`` 0..60 — kernel/watchdog.c ``watchdog_sysctls``: ``proc_watchdog_thresh``,
  ``extra1 = SYSCTL_ZERO``, ``extra2 = &sixty``.
* ``kernel.nmi_watchdog``, ``kernel.soft_watchdog`` 0..1 — same table, ``SYSCTL_ZERO``..``SYSCTL_ONE``.
* ``kernel.softlockup_panic``, ``kernel.hardlockup_panic`` 0..1 — kernel/watchdog.c,
  ``proc_dointvec_minmax`` ``SYSCTL_ZERO``..``SYSCTL_ONE`` (docs kernel-facts §1, §3).
* ``kernel.panic_on_rcu_stall`` 0..1 — kernel/sysctl.c ``kern_table`` (``CONFIG_TREE_RCU``),
  ``proc_dointvec_minmax``, ``SYSCTL_ZERO``..``SYSCTL_ONE``.
* ``kernel.nmi_wd_lpm_factor`` 0..UINT_MAX — arch/powerpc/platforms/pseries/mobility.c: ``static unsigned
  int nmi_wd_lpm_factor``, ``proc_douintvec_minmax`` without bounds.
* ``kernel.hung_task_timeout_secs`` 0..LONG_MAX/HZ — kernel/hung_task.c: ``proc_dohung_task_timeout_secs``
  (``proc_doulongvec_minmax``), ``extra2 = &hung_task_timeout_max``, ``hung_task_timeout_max =
  (LONG_MAX / HZ)``.  HZ is a build option user space cannot read reliably; the bound is taken at the
  largest HZ (1000), so the guard may refuse a value an HZ=100 kernel would take, never the reverse.
* ``workqueue.watchdog_thresh`` 0..ULONG_MAX/HZ — kernel/workqueue.c ``wq_watchdog_param_set_thresh``:
  ``kstrtoul`` takes 0..ULONG_MAX, but ``wq_watchdog_set_thresh`` arms the timer ``thresh * HZ`` jiffies
  ahead, which wraps (the detector would fire early) above ULONG_MAX/HZ; HZ = 1000 as above.
* ``rcupdate.rcu_cpu_stall_suppress`` INT_MIN..INT_MAX — kernel/rcu/update.c
  ``module_param(rcu_cpu_stall_suppress, int, 0644)``.
* ``rcupdate.rcu_cpu_stall_timeout`` 3..300 — ``module_param(rcu_cpu_stall_timeout, int, 0644)``, but
  ``rcu_jiffies_till_stall_check`` (kernel/rcu/tree_stall.h) clamps it to 3..300 when it is used: a
  value outside would be silently changed by the kernel, so the guard refuses it.

Any other setting: a signed 64-bit value (the widest a sysctl handler parses as signed; 20-digit values
are refused).
"""

from __future__ import annotations

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
UINT_MAX = 2**32 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
ULONG_MAX = 2**64 - 1
HZ_MAX = 1000  # the largest CONFIG_HZ choice (kernel/Kconfig.hz)

RANGES: dict[str, tuple[int, int]] = {
    "kernel.watchdog_thresh": (0, 60),
    "kernel.nmi_watchdog": (0, 1),
    "kernel.soft_watchdog": (0, 1),
    "kernel.softlockup_panic": (0, 1),
    "kernel.hardlockup_panic": (0, 1),
    "kernel.panic_on_rcu_stall": (0, 1),
    "kernel.nmi_wd_lpm_factor": (0, UINT_MAX),
    "kernel.hung_task_timeout_secs": (0, LONG_MAX // HZ_MAX),
    "workqueue.watchdog_thresh": (0, ULONG_MAX // HZ_MAX),
    "rcupdate.rcu_cpu_stall_suppress": (INT_MIN, INT_MAX),
    "rcupdate.rcu_cpu_stall_timeout": (3, 300),
}
GENERIC = (LONG_MIN, LONG_MAX)


def value_problem(name: str, value: int) -> str | None:
    """Why ``value`` cannot be written to ``name``, or None."""
    low, high = RANGES.get(name, GENERIC)
    if low <= value <= high:
        return None
    which = "the kernel's range" if name in RANGES else "a signed 64-bit range"
    return f"{value} is outside {which} for {name}: {low}..{high}"

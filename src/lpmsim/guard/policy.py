"""Policy names (the simulator's) -> the settings to write, per kernel generation.

Generations: ``pre-v6.0`` (no ``kernel.nmi_wd_lpm_factor``; drmgr's ``post`` runs right after resume while
memory is still arriving) and ``v6.0+`` (the kernel raises the hard-lockup timeout itself by
``nmi_wd_lpm_factor`` percent and returns to drmgr only when the memory transfer is complete).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

GEN_OLD = "pre-v6.0"
GEN_NEW = "v6.0+"
GENERATIONS = (GEN_OLD, GEN_NEW)

POLICY_NAMES = ("none", "disable-nmi", "nmi-factor:P", "inhibit-all")

WATCHDOG_THRESH = "kernel.watchdog_thresh"
NMI_WD_LPM_FACTOR = "kernel.nmi_wd_lpm_factor"
WATCHDOG_THRESH_MAX = 60  # kernel/watchdog.c: proc_watchdog_thresh, extra1 = 0, extra2 = sixty
FACTOR_MAX = 2**32 - 1  # nmi_wd_lpm_factor is an unsigned int (proc_douintvec_minmax, no bounds)

# inhibit-all: every lockup detector the kernel has, through its own switch.
INHIBIT_ALL: dict[str, int] = {
    "kernel.nmi_watchdog": 0,  # hard-lockup ("NMI") detector off
    "kernel.soft_watchdog": 0,  # soft-lockup detector off
    "rcupdate.rcu_cpu_stall_suppress": 1,  # RCU CPU stall warnings suppressed
    "workqueue.watchdog_thresh": 0,  # workqueue watchdog: 0 disables
    "kernel.hung_task_timeout_secs": 0,  # hung-task detector: 0 disables
}


_DIGITS = re.compile(r"[0-9]+")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Policy:
    name: str  # "none", "disable-nmi", "nmi-factor", "inhibit-all"
    factor: int | None = None

    def __str__(self) -> str:
        return f"nmi-factor:{self.factor}" if self.name == "nmi-factor" else self.name


def parse_policy(text: str) -> Policy:
    if text in ("none", "disable-nmi", "inhibit-all"):
        return Policy(text)
    if text.startswith("nmi-factor:"):
        raw = text.split(":", 1)[1]
        # ASCII digits only: str.isdigit() and int() also take other scripts' digits ("٣٠٠")
        if not _DIGITS.fullmatch(raw):
            raise PolicyError(f"nmi-factor:P needs P as a whole percentage >= 0, got {raw[:40]!r}")
        p = int(raw) if len(raw) <= 20 else FACTOR_MAX + 1
        if p > FACTOR_MAX:
            raise PolicyError(f"nmi-factor:P must be <= {FACTOR_MAX} (unsigned int), got {raw[:24]}")
        return Policy("nmi-factor", p)
    raise PolicyError(f"unknown policy {text[:60]!r}; expected one of: {', '.join(POLICY_NAMES)}")


def emulated_thresh(thresh: int, factor: int) -> tuple[int, int]:
    """On a pre-v6.0 kernel: the ``watchdog_thresh`` giving the hard-lockup timeout v6.0+ would use.

    v6.0+ computes ``thresh + factor * thresh / 100`` in whole seconds (arch/powerpc/kernel/watchdog.c,
    ``watchdog_calc_timeouts``); older kernels use ``watchdog_thresh`` itself as the hard-lockup
    timeout.  Returns (value to write, wanted value before clamping to the sysctl's 0..60 range).
    """
    wanted = thresh + factor * thresh // 100
    return min(wanted, WATCHDOG_THRESH_MAX), wanted


@dataclass
class Plan:
    targets: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # settings the plan needed to read and could not


def plan(
    policy: Policy,
    generation: str,
    current: Callable[[str], int | None],
    overrides: Mapping[str, int] | None = None,
) -> Plan:
    """The settings to write for ``policy`` on ``generation``; ``current(name)`` reads a live value."""
    out = Plan()
    if policy.name == "disable-nmi":
        out.targets["kernel.nmi_watchdog"] = 0
    elif policy.name == "inhibit-all":
        out.targets.update(INHIBIT_ALL)
    elif policy.name == "nmi-factor":
        factor = policy.factor or 0
        if generation == GEN_NEW:
            out.targets[NMI_WD_LPM_FACTOR] = factor
        else:
            thresh = current(WATCHDOG_THRESH)
            if thresh is None:
                out.missing.append(WATCHDOG_THRESH)
            elif thresh == 0:
                out.notes.append("kernel.watchdog_thresh is 0 (lockup detectors off): nothing to raise")
            else:
                value, wanted = emulated_thresh(thresh, factor)
                if value != thresh:
                    out.targets[WATCHDOG_THRESH] = value
                out.notes.append(
                    f"pre-v6.0 emulation of nmi-factor:{factor}: kernel.watchdog_thresh {thresh} -> {value}: "
                    f"hard-lockup timeout {value} s (SMP checker {value * 3 / 2:g} s), but the soft-lockup "
                    f"threshold also becomes {2 * value} s (was {2 * thresh} s) and the heartbeat period "
                    f"{value * 2 / 5:g} s"
                )
                if wanted > value:
                    out.notes.append(
                        f"clamped: v6.0+ would use a {wanted} s hard-lockup timeout; kernel.watchdog_thresh "
                        f"cannot exceed {WATCHDOG_THRESH_MAX}, so the emulated timeout is {value} s"
                    )
    if overrides:
        out.targets.update(overrides)
    return out

"""The scenario's ``bugs`` section: real kernel bugs to inject (ground truth for scoring policies).

Each entry is one bug at a fixed (``at_s``) or uniformly random (``window_s``) time, counted from
the migration's start or from the partition's resume on the destination (``after``), on a fixed
or random vCPU (random ones are drawn from the bug's own stream ``bugs/<index>``, so adding a bug
never changes another bug's draws).  What each kind is in kernel terms, and which detector should
report it when: docs/model/bugs.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationInfo, field_validator

from lpmsim.schema import Section
from lpmsim.schema import doc_field as _f

BugKind = Literal["irqs_soft_off_spin", "irqs_hard_off_spin", "abba_deadlock", "d_state"]
SPIN_KINDS = frozenset({"irqs_soft_off_spin", "irqs_hard_off_spin", "abba_deadlock"})


class BugSpec(Section):
    """One real kernel bug: a CPU that spins for ever, a deadlock, or a task stuck in D state."""

    kind: BugKind = _f(
        ...,
        "-",
        "irqs_soft_off_spin (local_irq_disable(); for (;;);), irqs_hard_off_spin (MSR[EE]=0 loop), "
        "abba_deadlock (two CPUs each hold one spinlock and spin on the other's), d_state (a task "
        "sleeps uninterruptibly for ever, e.g. waiting for I/O that never completes).",
    )
    cpu: int | None = _f(
        None,
        "cpu",
        "The vCPU (abba_deadlock: the first CPU, which holds lock A; d_state: the CPU the task "
        "last ran on, named in the report). Unset: drawn at random from stream bugs/<index>.",
        ge=0,
    )
    cpu2: int | None = _f(
        None,
        "cpu",
        "abba_deadlock only: the second CPU (holds lock B). Unset: drawn at random, distinct from cpu.",
        ge=0,
    )
    at_s: float | None = _f(
        None, "s", "Fixed time of the bug, counted from `after`. Give at_s or window_s.", ge=0
    )
    window_s: tuple[float, float] | None = _f(
        None, "s", "[lo, hi]: the time is drawn uniformly in it (stream bugs/<index>), counted from `after`."
    )
    after: Literal["start", "resume"] = _f(
        "resume",
        "-",
        "Origin of at_s/window_s: 'start' (t=0, the migration's start) or 'resume' (the partition "
        "resumed on the destination; never resumed: the bug never happens). Not migrating: both are t=0.",
    )
    irqsave: bool = _f(
        False,
        "-",
        "abba_deadlock only: the locks are taken with spin_lock_irqsave (CPUs spin soft-masked) "
        "instead of spin_lock (preemption off, interrupts on).",
    )
    horizon_s: float | None = _f(
        None,
        "s",
        "Keep simulating at least this long after the bug starts (or after the LPM flow ends, if "
        "later), within sim.max_time_s. Unset: derived from the kernel's thresholds (docs/model/bugs.md).",
        ge=0,
    )

    @field_validator("cpu2")
    @classmethod
    def _check_cpu2(cls, v: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("kind")
        if v is not None and kind is not None and kind != "abba_deadlock":
            raise ValueError(f"only abba_deadlock has a second CPU, not {kind}")
        if v is not None and v == info.data.get("cpu"):
            raise ValueError(f"the two CPUs of the deadlock must differ (cpu = cpu2 = {v})")
        return v

    @field_validator("window_s")
    @classmethod
    def _check_window(cls, v: tuple[float, float] | None, info: ValidationInfo) -> tuple[float, float] | None:
        if v is not None:
            lo, hi = v
            if lo < 0:
                raise ValueError(f"the window starts before its origin ({lo:g} < 0)")
            if lo > hi:
                raise ValueError(f"lo {lo:g} > hi {hi:g}")
        if "at_s" not in info.data:
            return v  # at_s itself was refused: that error is the one reported
        at = info.data["at_s"]
        if v is not None and at is not None:
            raise ValueError("give at_s (a fixed time) or window_s (a random time), not both")
        if v is None and at is None:
            raise ValueError("give at_s (a fixed time) or window_s (a random time)")
        return v

    @field_validator("irqsave")
    @classmethod
    def _check_irqsave(cls, v: bool, info: ValidationInfo) -> bool:
        kind = info.data.get("kind")
        if v and kind is not None and kind != "abba_deadlock":
            raise ValueError(f"only abba_deadlock takes locks, not {kind}")
        return v

    @property
    def ncpus(self) -> int:
        """CPUs the bug runs on (d_state: the one its task is attributed to)."""
        return 2 if self.kind == "abba_deadlock" else 1

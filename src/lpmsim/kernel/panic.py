"""Outcome of a run: survived, panic or crash, and how the kernel log ends.

Mirrors kernel/panic.c (``panic()`` prints ``Kernel panic - not syncing: %s`` and never returns)
and arch/powerpc/kernel/traps.c (``die()`` prints ``Oops: %s, sig: %ld [#%d]``; for a system reset
(0x100) ``oops_end()`` returns early - no ``panic_on_oops``, no crash dump - leaving the rest to
``system_reset_exception``: what follows an unrecoverable one is in ``lpmsim.kernel.nmi_ipi``), v6.x.  A panic or crash
stops the simulation: the model sets ``dead`` and every detector returns early from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Cause = Literal[
    "hardlockup_panic",
    "softlockup_panic",
    "rcu_stall_panic",
    "hung_task_panic",
    "workqueue_panic",
    "unrecoverable_system_reset",
    "system_reset_dump",
]


@dataclass(frozen=True)
class Crash:
    time_s: float
    cause: Cause
    cpu: int
    kind: Literal["panic", "crash"]

    def as_dict(self) -> dict[str, object]:
        return {"time_s": self.time_s, "cause": self.cause, "cpu": self.cpu}


def panic_line(msg: str) -> str:
    """``panic(fmt)``: the format's trailing newline is not part of the line."""
    return f"Kernel panic - not syncing: {msg.rstrip(chr(10))}"


def oops_line(msg: str, sig: int, count: int = 1) -> str:
    """powerpc ``__die``: ``Oops: %s, sig: %ld [#%d]``."""
    return f"Oops: {msg}, sig: {sig} [#{count}]"

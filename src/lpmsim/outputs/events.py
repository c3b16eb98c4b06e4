"""A report of the simulated kernel, typed: one entry of ``summary.json``'s ``events``.

Shared by the terminal story (``outputs.story``) and the Python API (``lpmsim.KernelEvent``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KernelEvent:
    """One report of the simulated kernel: an entry of ``summary.json``'s ``events``.

    ``detector``: ``hardlockup``, ``softlockup``, ``rcu_stall``, ``workqueue_lockup``,
    ``hung_task``, ``nmi_ipi`` (the NMI IPI backtrace: ``ipi-report``, ``timeout``,
    ``unrecoverable``, ``dump``), ``hv_stall`` (the ``annotate`` policy's lines) or ``panic``
    (``panic`` or ``crash``).  ``kind``: what the detector printed (``smp-detected``,
    ``self-detected``...; ``unstuck`` when it saw the CPU move again, which is not a report).
    ``cpus``: the CPUs it names; ``by``: the CPU that printed it; ``line``: its first log line
    (without the printk prefix); ``cause``: ``migration`` or ``bug:<index>`` (the injected bug
    that caused it, ``lpmsim.bugs.attribution``)."""

    time_s: float
    detector: str
    kind: str
    cpus: tuple[int, ...]
    by: int | None
    line: str | None
    cause: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KernelEvent:
        """From one entry of ``summary["events"]``."""
        by = data.get("by")
        return cls(
            time_s=float(data["time_s"]),
            detector=str(data["detector"]),
            kind=str(data["kind"]),
            cpus=tuple(int(c) for c in data["cpus"]),
            by=None if by is None else int(by),
            line=data.get("line"),
            cause=data.get("cause"),
        )

"""The workload a partition runs: memory regions, execution contexts and spinlocks (scenario
section ``workload``).

A workload preset (``workload.preset``, see ``guest.presets``) gives every field; a scenario
overrides what differs, e.g. ``--set workload.contexts.irqs_soft_off.mean_s=0.0002``.

Contexts form a semi-Markov chain: a segment of context k lasts a Gamma-distributed CPU time
(mean ``mean_s``, coefficient of variation ``cv``; cv = 1 is exponential), and the next context is
drawn with probability proportional to share_j / mean_j, so that in the long run context j holds
the fraction ``share_j`` of running time.  While running in context k the vCPU touches
``touch_rate_hz`` distinct pages per second, spread over regions by ``touches``.

Spinlocks are taken from the kernel contexts (kernel, preempt_off, irqs_soft_off) at
``rate_hz`` acquisitions per second of such time; the holder runs ``hold_mean_s`` of CPU time in
the lock's interrupt state (``irqsave``: irqs_soft_off, otherwise preempt_off) touching
``region``; waiters spin in the same interrupt state.  The global RTAS lock is always present
(``rtas`` below): ``rtas_call()`` takes it with ``raw_spin_lock_irqsave`` (waiters spin
soft-masked, ``irqs_soft_off``) and only the holder, inside ``do_enter_rtas()``, runs
hard-disabled (arch/powerpc/kernel/rtas.c).

``irq_rate_hz`` is the rate of interrupts that must be hard-masked (external interrupts: devices
and IPIs through the interrupt controller) arriving at each vCPU; one arriving in a soft-masked
section hard-disables the vCPU until it re-enables interrupts (``lpmsim.kernel.irq_arrivals``).
"""

from __future__ import annotations

import math

from pydantic import Field, field_validator, model_validator

from lpmsim.guest.cpustate import Ctx
from lpmsim.schema import Section
from lpmsim.schema import doc_field as _f

CONTEXTS = tuple(c.value for c in Ctx)


class RegionSpec(Section):
    """A memory region of the partition, in address order."""

    name: str = _f(..., "-", "Region name; contexts and locks refer to it.")
    size_fraction: float | None = _f(None, "fraction", "Size as a fraction of partition memory.", gt=0, le=1)
    size_gib: float | None = _f(None, "GiB", "Size in GiB (instead of size_fraction).", gt=0)
    write_fraction: float = _f(
        0.0, "fraction", "Fraction of touches that write (and dirty the page).", ge=0, le=1
    )
    zipf_s: float = _f(0.0, "-", "Skew: page of rank i has weight 1/i^s (0 = uniform).", ge=0, le=4)
    per_cpu: bool = _f(False, "-", "Split into one equal slice per vCPU; a vCPU touches only its own slice.")
    remainder: bool = _f(False, "-", "Takes whatever memory the other regions leave (exactly one region).")


class ContextSpec(Section):
    """One execution context of the semi-Markov chain."""

    share: float = _f(..., "fraction", "Long-run fraction of running time spent in this context.", ge=0, le=1)
    mean_s: float = _f(..., "s", "Mean CPU time of one segment.", gt=0)
    cv: float = _f(
        1.0, "-", "Coefficient of variation of the segment length (Gamma; 1 = exponential).", gt=0, le=10
    )
    touch_rate_hz: float = _f(
        0.0, "touches/s", "Distinct-page touches per second of CPU time in this context.", ge=0
    )
    touches: dict[str, float] = Field(
        default_factory=dict,
        description="Share of this context's touches per region (normalised).",
        json_schema_extra={"unit": "weights"},
    )


class LockSpec(Section):
    """A kernel spinlock."""

    name: str = _f(..., "-", "Lock name.")
    irqsave: bool = _f(
        False, "-", "Taken with spin_lock_irqsave (holder and waiters soft-disable interrupts)."
    )
    rate_hz: float = _f(..., "1/s", "Acquisitions per second of kernel-context CPU time, per vCPU.", ge=0)
    hold_mean_s: float = _f(..., "s", "Mean CPU time the lock is held (exponential).", gt=0)
    region: str = _f(..., "-", "Region the holder touches while holding it.")
    touch_rate_hz: float = _f(0.0, "touches/s", "Distinct-page touches per second while holding.", ge=0)


class RtasSpec(Section):
    """The memory an RTAS call runs in and touches (RTAS executes in partition memory, real mode)."""

    region: str = _f("rtas", "-", "Region holding RTAS's code and data.")
    touch_rate_hz: float = _f(
        20000.0, "touches/s", "Distinct-page touches per second inside firmware. ASSUMPTION.", ge=0
    )
    calls_hz: float = _f(
        1.0,
        "1/s",
        "RTAS calls per second in normal operation (event scan, sensors); they "
        "dirty the RTAS region during pre-copy. ASSUMPTION.",
        ge=0,
    )
    call_mean_s: float = _f(0.0005, "s", "Mean CPU time of such a call. ASSUMPTION.", gt=0)


class Workload(Section):
    """What the partition runs (see docs/model/guest.md)."""

    preset: str = _f(
        "oltp",
        "-",
        "Workload preset the other fields start from (idle, oltp, analytics, kernel-build, memory-stress).",
    )
    description: str = _f("", "-", "What this workload represents and where its figures come from.")
    touch_scale: float = _f(
        1.0,
        "x",
        "Multiplies every touch rate (contexts, locks, RTAS): the same workload, more "
        "or less memory-intensive.",
        ge=0,
    )
    regions: tuple[RegionSpec, ...] = Field(
        default=(), json_schema_extra={"unit": "-"}, description="Memory regions in address order."
    )
    contexts: dict[str, ContextSpec] = Field(
        default_factory=dict,
        json_schema_extra={"unit": "-"},
        description="The execution contexts (all six must be given; share may be 0).",
    )
    locks: tuple[LockSpec, ...] = Field(
        default=(), json_schema_extra={"unit": "-"}, description="Kernel spinlocks."
    )
    rtas: RtasSpec = Field(default_factory=RtasSpec)
    irq_rate_hz: float = _f(
        100.0,
        "1/s",
        "External interrupts (PACA_IRQ_EE: device interrupts and IPIs sent through the interrupt "
        "controller) arriving per second at each vCPU; one that arrives in a soft-masked section "
        "hard-disables it until it re-enables interrupts, so no soft-NMI reaches it. ASSUMPTION: "
        "no published per-CPU figure for PowerVM LPARs; each preset gives its own.",
        ge=0,
        le=1e6,
    )

    @field_validator("contexts")
    @classmethod
    def _contexts(cls, v: dict[str, ContextSpec]) -> dict[str, ContextSpec]:
        if not v:
            return v
        unknown = [c for c in v if c not in CONTEXTS]
        if unknown:
            raise ValueError(f"unknown contexts: {', '.join(unknown)} (known: {', '.join(CONTEXTS)})")
        missing = [c for c in CONTEXTS if c not in v]
        if missing:
            raise ValueError(f"missing contexts: {', '.join(missing)}")
        total = sum(c.share for c in v.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"shares add up to {total:g}, not 1")
        return v

    @model_validator(mode="after")
    def _references(self) -> Workload:
        if not self.regions:
            return self
        names = [r.name for r in self.regions]
        if len(set(names)) != len(names):
            raise ValueError("regions: names must be unique")
        if sum(1 for r in self.regions if r.remainder) != 1:
            raise ValueError("regions: exactly one region must have remainder = true")
        for r in self.regions:
            if not r.remainder and (r.size_fraction is None) == (r.size_gib is None):
                raise ValueError(f"regions: {r.name} needs exactly one of size_fraction and size_gib")
        known = set(names)
        for cname, c in self.contexts.items():
            for reg in c.touches:
                if reg not in known:
                    raise ValueError(f"contexts.{cname}.touches: unknown region {reg!r}")
        for lk in self.locks:
            if lk.region not in known:
                raise ValueError(f"locks: {lk.name}: unknown region {lk.region!r}")
        if self.rtas.region not in known:
            raise ValueError(f"rtas.region: unknown region {self.rtas.region!r}")
        return self

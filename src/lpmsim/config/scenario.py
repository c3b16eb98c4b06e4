"""The scenario schema.

Every field carries its unit and meaning (``lpmsim explain`` prints them).  Figures that are
assumptions about the platform say so in their description and in ``docs/model/transfer.md``.
Models forbid unknown fields so that a typo is an error naming the field, not a silent default.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _f(default: Any, unit: str, description: str, **kw: Any) -> Any:
    return Field(default, description=description, json_schema_extra={"unit": unit}, **kw)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class Partition(Section):
    """The logical partition being migrated."""

    vcpus: int = _f(
        16,
        "vCPUs",
        "Number of virtual processors (Power10 allows up to 1,920: 240 cores x SMT8).",
        ge=1,
        le=8192,
    )
    memory_gib: float = _f(64.0, "GiB", "Partition memory, all of which is migrated.", gt=0)


class Platform(Section):
    """The hypervisor's memory-transfer path between the source and the destination server."""

    page_kib: int = _f(
        64,
        "KiB",
        "Transfer granularity. ASSUMPTION: the PowerVM transfer unit is not documented; "
        "64 KiB is Linux's base page on Book3S-64 (platform-facts 1.6).",
        ge=4,
        le=16 * 1024 * 1024,
    )
    link_gbps: float = _f(
        10.0,
        "Gb/s",
        "Effective bandwidth of the migration link (10 Gb+ recommended by IBM, platform-facts 1.3).",
        gt=0,
    )
    rtt_us: float = _f(
        100.0,
        "µs",
        "Round-trip time of a demand request to the source and back. ASSUMPTION: "
        "typical data-centre LAN plus MSP forwarding.",
        ge=0,
    )
    fault_overhead_us: float = _f(
        50.0,
        "µs",
        "Fixed per-fault cost in the hypervisors (request handling, "
        "installing the page, redispatching the vCPU). ASSUMPTION.",
        ge=0,
    )
    discipline: Literal["shared-fifo", "demand-first"] = _f(
        "shared-fifo",
        "-",
        "How a demand request shares the link with the background push: 'shared-fifo' queues "
        "it behind the push window (vanilla QEMU post-copy); 'demand-first' overtakes queued push pages and waits "
        "only for the page in flight (QEMU postcopy-preempt).",
    )
    prefetch_pages: int = _f(
        0, "pages", "A fault also brings the next k missing pages in address order.", ge=0
    )
    push_window_pages: int = _f(
        256,
        "pages",
        "Background pages the push keeps queued on the link ahead of any "
        "demand request (ASSUMPTION; the MSP buffers 'small amounts of data at a time').",
        ge=1,
    )
    background_push: bool = _f(
        True,
        "-",
        "Push the missing pages in the background after resume; false leaves "
        "only demand traffic (for analysis: the transfer then never completes by itself).",
    )
    push_order: Literal["address", "hottest-first"] = _f(
        "address",
        "-",
        "Order of the background push: ascending address, or the most-touched region buckets first.",
    )


class Region(Section):
    """One memory region of the simple access process."""

    name: str = _f(..., "-", "Region name (appears in metrics).")
    memory_fraction: float = _f(..., "fraction", "Share of partition memory in this region.", gt=0, le=1)
    touch_share: float = _f(
        ..., "fraction", "Share of all page touches that land in this region.", ge=0, le=1
    )
    write_fraction: float = _f(
        0.0, "fraction", "Fraction of touches that write (and so dirty the page).", ge=0, le=1
    )
    zipf_s: float = _f(
        0.0, "-", "Skew within the region: page of rank i has weight 1/i^s (0 = uniform).", ge=0, le=4
    )


def _default_regions() -> tuple[Region, ...]:
    # ASSUMPTION (docs/model/transfer.md): a small, skewed writable working set; most memory is
    # read-mostly.  The guest model's workload presets replace these with cited figures.
    return (
        Region(name="hot", memory_fraction=0.02, touch_share=0.60, write_fraction=0.25, zipf_s=1.0),
        Region(name="warm", memory_fraction=0.18, touch_share=0.35, write_fraction=0.002, zipf_s=0.0),
        Region(name="cold", memory_fraction=0.80, touch_share=0.05, write_fraction=0.0005, zipf_s=0.0),
    )


class Access(Section):
    """The foundation's simple access process: each running vCPU touches pages at a fixed rate.

    The guest model (execution contexts, spinlocks, kernel regions) replaces it in a later issue.
    """

    touch_rate_hz: float = _f(
        5000.0,
        "touches/s per vCPU",
        "Distinct-page touches per second of running vCPU "
        "time (ASSUMPTION: page-granular working-set references, not cache-line accesses).",
        ge=0,
    )
    regions: tuple[Region, ...] = Field(
        default_factory=_default_regions,
        description="Memory regions in address order; memory_fraction must add up to 1, touch_share to 1.",
        json_schema_extra={"unit": "-"},
    )

    @field_validator("regions")
    @classmethod
    def _regions_add_up(cls, v: tuple[Region, ...]) -> tuple[Region, ...]:
        if not v:
            raise ValueError("at least one region is needed")
        mem = sum(r.memory_fraction for r in v)
        touch = sum(r.touch_share for r in v)
        if not math.isclose(mem, 1.0, abs_tol=1e-6):
            raise ValueError(f"memory_fraction adds up to {mem:g}, not 1")
        if not math.isclose(touch, 1.0, abs_tol=1e-6):
            raise ValueError(f"touch_share adds up to {touch:g}, not 1")
        names = [r.name for r in v]
        if len(set(names)) != len(names):
            raise ValueError("region names must be unique")
        return v


class Migration(Section):
    """The hypervisor's migration: pre-copy rounds, suspend/blackout, post-copy."""

    enabled: bool = _f(True, "-", "Migrate the partition; false simulates a partition that stays put.")
    precopy_max_rounds: int = _f(
        30, "rounds", "Stop pre-copy after this many rounds (Xen: 30, platform-facts 3.1).", ge=1, le=1000
    )
    precopy_stop_fraction: float = _f(
        0.01,
        "fraction",
        "Stop pre-copy when the pages left to send fall to this "
        "fraction of memory (the MSP's 'sufficient number of pages are clean', Wikipedia's 'high percentage of pages copied'; "
        "ASSUMPTION).",
        ge=0,
        le=1,
    )
    precopy_max_factor: float = _f(
        3.0,
        "x memory",
        "Stop pre-copy once this many times the partition's memory has been sent (Xen DEF_MAX_FACTOR 3).",
        ge=1,
    )
    resume_missing_fraction: float | None = _f(
        None,
        "fraction",
        "Force the fraction of pages still missing at "
        "resume, bypassing the pre-copy stop rule (the last round is "
        "stretched so its dirty set has this size).",
        ge=0,
        le=1,
    )
    blackout_s: float = _f(
        0.25,
        "s",
        "Suspended time between the last pre-copy round and resume (CPU state and "
        "final transfer). ASSUMPTION: Xen/QEMU downtimes are 60-300 ms (platform-facts 2.5, 3.1).",
        ge=0,
    )


class Sim(Section):
    """How the simulation runs."""

    mode: Literal["exact", "fluid"] = _f(
        "exact",
        "-",
        "'exact' tracks every page and fault; 'fluid' tracks "
        "resident fractions per region bucket and steps all vCPUs together.",
    )
    seed: int = _f(1, "-", "Seed of every random stream.", ge=0, le=2**63 - 1)
    max_time_s: float = _f(
        7200.0, "s", "Stop the simulation at this simulated time after the migration starts.", gt=0
    )
    fluid_step_s: float = _f(
        0.002,
        "s",
        "Longest time step of the fluid mode (steps shrink to a third of the fault latency, down to an eighth of this).",
        gt=0,
        le=1,
    )


class Scenario(Section):
    """A complete, validated scenario."""

    name: str = _f("custom", "-", "Scenario name (shown in the summary).")
    description: str = _f("", "-", "Free text describing the scenario.")
    partition: Partition = Field(default_factory=Partition)
    platform: Platform = Field(default_factory=Platform)
    migration: Migration = Field(default_factory=Migration)
    access: Access = Field(default_factory=Access)
    sim: Sim = Field(default_factory=Sim)

    # Derived quantities used everywhere ----------------------------------------------------
    @property
    def page_bytes(self) -> int:
        return self.platform.page_kib * 1024

    @property
    def total_pages(self) -> int:
        return int(self.partition.memory_gib * 2**30) // self.page_bytes

    @property
    def page_time_s(self) -> float:
        """Time one page occupies the link."""
        return self.page_bytes * 8 / (self.platform.link_gbps * 1e9)

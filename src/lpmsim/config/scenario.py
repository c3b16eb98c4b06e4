"""The scenario schema.

Every field carries its unit and meaning (``lpmsim explain`` prints them).  Figures that are
assumptions about the platform say so in their description and in ``docs/model/transfer.md``.
Models forbid unknown fields so that a typo is an error naming the field, not a silent default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from lpmsim.bugs.config import BugSpec
from lpmsim.guest.workload import Workload
from lpmsim.hypervisor.topology import cores
from lpmsim.kernel.config import Kernel, ScriptEntry
from lpmsim.policies.spec import PolicyError, PolicySpec, parse_policy
from lpmsim.schema import Section
from lpmsim.schema import doc_field as _f


class Partition(Section):
    """The logical partition being migrated."""

    vcpus: int = _f(
        16,
        "vCPUs",
        "Number of virtual processors (Power10 allows up to 1,920: 240 cores x SMT8).",
        ge=1,
        le=8192,
    )
    memory_gib: float = _f(
        64.0,
        "GiB",
        "Partition memory, all of which is migrated (at most 1 PiB; Power10 allows 64 TiB).",
        gt=0,
        le=2**20,
    )
    smt: int = _f(
        8,
        "threads",
        "SMT threads per virtual processor (core): Linux CPU c is thread c % smt of core c // smt "
        "(8: the POWER8-POWER10 LPAR default, ppc64_cpu --smt).  Only the NUMA topology uses it.",
        ge=1,
        le=8,
    )
    numa_nodes: int = _f(
        1,
        "nodes",
        "NUMA nodes the hypervisor spreads the cores over (ibm,associativity; the node= of a "
        "per-CPU workqueue pool).  ASSUMPTION: cores in contiguous blocks as equal as possible, "
        "nodes numbered from 0 (lpmsim.hypervisor.topology); 1 (the default) puts every CPU on node 0.",
        ge=1,
        le=256,
    )

    @field_validator("numa_nodes")
    @classmethod
    def _check_numa_nodes(cls, v: int, info: ValidationInfo) -> int:
        vcpus, smt = info.data.get("vcpus"), info.data.get("smt")
        if vcpus is None or smt is None:
            return v  # vcpus or smt was refused: that error is the one reported
        n_cores = cores(vcpus, smt)
        if v > n_cores:
            raise ValueError(
                f"{v} nodes for {n_cores} core{'s' if n_cores > 1 else ''} ({vcpus} vCPUs at SMT{smt}): "
                "a core's threads are on one node, so at most one node per core"
            )
        return v


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
        le=100_000,
    )
    rtt_us: float = _f(
        100.0,
        "µs",
        "Round-trip time of a demand request to the source and back. ASSUMPTION: "
        "typical data-centre LAN plus MSP forwarding.",
        ge=0,
        le=10_000_000,
    )
    fault_overhead_us: float = _f(
        50.0,
        "µs",
        "Fixed per-fault cost in the hypervisors (request handling, "
        "installing the page, redispatching the vCPU). ASSUMPTION.",
        ge=0,
        le=10_000_000,
    )
    discipline: Literal["shared-fifo", "demand-first"] = _f(
        "shared-fifo",
        "-",
        "How a demand request shares the link with the background push: 'shared-fifo' queues "
        "it behind the push window (vanilla QEMU post-copy); 'demand-first' overtakes queued push pages and waits "
        "only for the page in flight (QEMU postcopy-preempt).",
    )
    prefetch_pages: int = _f(
        0,
        "pages",
        "A fault also brings k more missing pages: the next ones in address order (exact mode), "
        "k pages of the same region (fluid mode, where pages are not ordered).",
        ge=0,
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
        "Force the fraction of pages still missing at resume, bypassing the pre-copy stop rule: "
        "the partition suspends after round 1 with this fraction missing, each page chosen with "
        "probability proportional to its chance of having been written during round 1.",
        ge=0,
        le=1,
    )
    blackout_s: float = _f(
        0.25,
        "s",
        "Suspended time between the last pre-copy round and resume (CPU state and "
        "final transfer). ASSUMPTION: Xen/QEMU downtimes are 60-300 ms (platform-facts 2.5, 3.1).",
        ge=0,
        le=86_400,
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
        7200.0,
        "s",
        "Stop the simulation at this simulated time after the migration starts (at most 10^7 s).",
        gt=0,
        le=1e7,
    )
    fluid_step_s: float = _f(
        0.02,
        "s",
        "Longest time step of the fluid mode: a step is a third of the current "
        "fault latency, within [fluid_step_min_s, fluid_step_s].",
        gt=0,
        le=1,
    )
    fluid_step_min_s: float = _f(0.0002, "s", "Shortest time step of the fluid mode.", gt=0, le=1)
    fluid_publish_min_s: float = _f(
        1.0,
        "s",
        "Fluid mode: shortest episode (interrupts-off or preempt-off run, "
        "spin, or single stall) shown to the kernel's detectors; shorter ones cannot "
        "trip a detector whose thresholds are several seconds, and between them the "
        "vCPU takes its interrupts.",
        gt=0,
    )


class Mitigation(Section):
    """The mitigation policy the partition uses during the migration (``lpmsim policies`` lists them)."""

    policy: str = _f(
        "kernel",
        "-",
        "Policy string: mechanisms joined with '+', e.g. 'nmi-factor:200+freeze-user:completed'. "
        "'kernel' is what kernel.version does by itself (v6.0+: nmi-factor:<nmi_wd_lpm_factor>); "
        "anything not listed is off. See docs/policies.md.",
    )
    options: dict[str, float | int | str] = Field(
        default_factory=dict,
        json_schema_extra={"unit": "-"},
        description="Options of the listed policies (`lpmsim policies` lists them), e.g. {faults = 20} "
        'with policy = "adaptive-factor".',
    )

    @field_validator("policy")
    @classmethod
    def _check_policy(cls, v: str) -> str:
        try:
            return str(parse_policy(v))
        except PolicyError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("options")
    @classmethod
    def _check_options(
        cls, v: dict[str, float | int | str], info: ValidationInfo
    ) -> dict[str, float | int | str]:
        policy = info.data.get("policy")
        if policy is None:
            return v  # the policy itself was refused: that error is the one reported
        try:
            parse_policy(policy, v)
        except PolicyError as exc:
            raise ValueError(str(exc)) from None
        return v

    @property
    def spec(self) -> PolicySpec:
        return parse_policy(self.policy, self.options)


class Scenario(Section):
    """A complete, validated scenario."""

    name: str = _f("custom", "-", "Scenario name (shown in the summary).")
    description: str = _f("", "-", "Free text describing the scenario.")
    partition: Partition = Field(default_factory=Partition)
    platform: Platform = Field(default_factory=Platform)
    migration: Migration = Field(default_factory=Migration)
    workload: Workload = Field(default_factory=Workload)
    kernel: Kernel = Field(default_factory=Kernel)
    script: tuple[ScriptEntry, ...] = Field(
        default=(), description="Per-CPU scripted states (lpmsim.kernel.script)."
    )
    bugs: tuple[BugSpec, ...] = Field(
        default=(),
        description="Real kernel bugs injected at fixed or random times, to score the detectors "
        "(lpmsim.bugs, docs/model/bugs.md).",
    )
    mitigation: Mitigation = Field(default_factory=Mitigation)
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

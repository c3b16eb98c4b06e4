"""What both fidelity modes of the guest model share: their inputs, the freezer hook, and ``claim``."""

from __future__ import annotations

from collections.abc import Callable

from lpmsim.config.scenario import Scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates
from lpmsim.guest.metrics import GuestMetrics
from lpmsim.hypervisor.layout import Layout


class GuestBase:
    """The partition's vCPUs: where their state is published, where their faults are counted.

    ``freeze_user``/``thaw_user`` are the kernel model's freezer hooks: while frozen, no vCPU
    runs user code (its user time idles or goes to the other contexts, per mode).

    ``claim(cpu, ready)`` takes a vCPU away from the workload for ever: an injected kernel bug
    (``lpmsim.bugs``) runs there from then on.  The mode stops driving it — no more segments,
    episodes, faults or writes to its ``CpuStates`` entry — and calls ``ready`` once it has let
    go: at once, or, if the vCPU is stalled in the hypervisor on a fault, when that stall ends
    (a stalled vCPU executes nothing, so the bug's code can only start then)."""

    def __init__(
        self,
        env: Environment,
        sc: Scenario,
        layout: Layout,
        cpus: CpuStates,
        streams: RngStreams,
        metrics: GuestMetrics,
    ) -> None:
        self.env = env
        self.sc = sc
        self.layout = layout
        self.cpus = cpus
        self.streams = streams
        self.metrics = metrics
        self.frozen = False
        self.claimed: set[int] = set()

    def claim(self, cpu: int, ready: Callable[[], None]) -> None:
        """Take ``cpu`` away from the workload for ever; ``ready()`` once the mode has let go."""
        if cpu in self.claimed:
            raise ValueError(f"vCPU {cpu} already claimed")
        self.claimed.add(cpu)
        self._claim(cpu, ready)

    def _claim(self, cpu: int, ready: Callable[[], None]) -> None:
        ready()

    def freeze_user(self) -> None:
        self.frozen = True

    def thaw_user(self) -> None:
        self.frozen = False

"""What both fidelity modes of the guest model share: their inputs and the freezer hook."""

from __future__ import annotations

from lpmsim.config.scenario import Scenario
from lpmsim.engine.core import Environment
from lpmsim.engine.rng import RngStreams
from lpmsim.guest.cpustate import CpuStates
from lpmsim.guest.metrics import GuestMetrics
from lpmsim.hypervisor.layout import Layout


class GuestBase:
    """The partition's vCPUs: where their state is published, where their faults are counted.

    ``freeze_user``/``thaw_user`` are the kernel model's freezer hooks: while frozen, no vCPU
    runs user code (its user time idles or goes to the other contexts, per mode)."""

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

    def freeze_user(self) -> None:
        self.frozen = True

    def thaw_user(self) -> None:
        self.frozen = False

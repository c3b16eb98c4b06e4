"""Per-vCPU blocked time and fault latencies: the counterpart of QEMU's postcopy blocktime.

QEMU reports ``postcopy-vcpu-blocktime`` (time each vCPU spent blocked on missing pages) and,
since 10.1, a latency distribution (platform-facts 2.4).  Both fidelity modes record here: the
exact mode one fault at a time, the fluid mode a count of faults sharing one latency.
"""

from __future__ import annotations

from array import array

import numpy as np


class FaultRecorder:
    def __init__(self, vcpus: int) -> None:
        self.blocktime = np.zeros(vcpus)
        self.faults = np.zeros(vcpus, dtype=np.int64)
        # one (latency, count) per record: compact arrays (the fluid mode adds one per step)
        self._lat = array("d")
        self._weight = array("q")

    def record(self, vcpu: int, latency: float) -> None:
        self.blocktime[vcpu] += latency
        self.faults[vcpu] += 1
        self._lat.append(latency)
        self._weight.append(1)

    def record_many(self, per_vcpu: np.ndarray, latency: float) -> None:
        """``per_vcpu[i]`` faults on vCPU i, each waiting ``latency``."""
        n = int(per_vcpu.sum())
        if n == 0:
            return
        self.blocktime += per_vcpu * latency
        self.faults += per_vcpu
        self._lat.append(latency)
        self._weight.append(n)

    def record_counted(self, n: int, latency: float) -> None:
        """``n`` faults at ``latency`` whose per-vCPU ``blocktime`` and ``faults`` the caller has
        already added (the compiled fluid step)."""
        if n:
            self._lat.append(latency)
            self._weight.append(n)

    @property
    def count(self) -> int:
        return int(self.faults.sum())

    def latencies(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self._lat, dtype=float), np.asarray(self._weight, dtype=np.int64)

    def quantile(self, q: float) -> float:
        lat, w = self.latencies()
        if lat.size == 0:
            return 0.0
        order = np.argsort(lat, kind="stable")
        cw = np.cumsum(w[order])
        k = int(np.searchsorted(cw, q * cw[-1], side="left"))
        return float(lat[order][min(k, lat.size - 1)])

    def mean(self) -> float:
        lat, w = self.latencies()
        return float((lat * w).sum() / w.sum()) if w.size else 0.0

    def max(self) -> float:
        lat, _ = self.latencies()
        return float(lat.max()) if lat.size else 0.0

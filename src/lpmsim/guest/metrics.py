"""What the guest felt: stalls per context, spinning, interrupts-off time, throughput lost.

``blocktime`` per vCPU is the counterpart of QEMU's ``postcopy-vcpu-blocktime`` (time blocked on
missing pages); spinning behind a stalled lock holder is counted separately (``spin``), because it
is time the vCPU ran but did nothing useful.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from lpmsim.guest.blocktime import FaultRecorder
from lpmsim.guest.cpustate import Ctx
from lpmsim.guest.fluid_hist import HIST_BINS, hist_bin

# The interrupts-off contexts' values, looked up once: ``Ctx.IRQS_SOFT_OFF`` costs a class
# attribute lookup through the enum's metaclass (~0.2 µs) at every exact-mode segment.
_IRQS_OFF = frozenset((Ctx.IRQS_SOFT_OFF.value, Ctx.IRQS_HARD_OFF.value))


class GuestMetrics(FaultRecorder):
    def __init__(self, vcpus: int) -> None:
        super().__init__(vcpus)
        self.spin = np.zeros(vcpus)
        self.max_stall = 0.0
        self.max_irqs_off = 0.0
        self.max_spin = 0.0
        self.max_spinners = 0
        # stall seconds per context (row = position in ``Ctx``; ``ctx_stall`` names them): one
        # array that every writer adds to, in time order, the compiled fluid step included
        self.ctx_stall_s = np.zeros(len(Ctx))
        self._ctx_faults: dict[str, int] = {c.value: 0 for c in Ctx}
        # faults per context row that the compiled fluid step counted and ``ctx_faults`` does not
        # hold yet (it adds them when read): the step adds to an array, not to a dict
        self.ctx_nf = np.zeros(len(Ctx), dtype=np.int64)
        # Stalls of context segments (fluid: episodes), per context (row = position in ``Ctx``):
        # count, sum and maximum (``seg_stats``) and a histogram over ``hist_edges()``: running
        # sums, so that memory does not grow with the run (the fluid step updates them in place).
        self.seg_stats = np.zeros((len(Ctx), 3))
        self.seg_hist = np.zeros((len(Ctx), HIST_BINS), dtype=np.int64)
        self._row = {c.value: i for i, c in enumerate(Ctx)}
        self.window_start: float | None = None
        self.window_end: float | None = None
        # Fluid mode records a stall or spin when it starts, whole, even if it outlasts the run:
        # with a clock, each vCPU's lost time is laid end to end from its record time (``_until``)
        # so that the summary counts only the part inside the window (throughput_loss_frac <= 1).
        self._clock: Callable[[], float] | None = None
        self._until = np.zeros(vcpus)
        # (start, length) of each interrupts-off run that was the longest so far when recorded
        # (fluid mode): records come in time order, so the longest run inside the window is among them.
        self._irqs_off_runs: list[tuple[float, float]] = []

    @property
    def ctx_faults(self) -> dict[str, int]:
        """Faults per context (the dict itself: ``ctx_faults[ctx] += n`` adds to it)."""
        nf = self.ctx_nf
        if nf.any():
            d = self._ctx_faults
            for c, n in zip(Ctx, nf.tolist(), strict=True):
                if n:
                    d[c.value] += n
            nf[:] = 0
        return self._ctx_faults

    @property
    def ctx_stall(self) -> dict[str, float]:
        """Stall seconds per context (a copy: write to ``ctx_stall_s``)."""
        return {c.value: float(v) for c, v in zip(Ctx, self.ctx_stall_s.tolist(), strict=True)}

    def records_start_now(self, clock: Callable[[], float]) -> None:
        """Records from now on are of intervals starting at ``clock()`` (the fluid mode's)."""
        self._clock = clock

    def _lay(self, per_vcpu: np.ndarray, seconds: np.ndarray | float) -> None:
        if self._clock is None:
            return
        now = self._clock()
        start = np.maximum(self._until, now if self.window_start is None else max(now, self.window_start))
        self._until[:] = np.where(per_vcpu > 0, start + seconds, self._until)  # in place: the step writes it

    def _lay_one(self, vcpu: int, seconds: float) -> None:
        if self._clock is None:
            return
        now = self._clock()
        if self.window_start is not None:
            now = max(now, self.window_start)
        self._until[vcpu] = max(float(self._until[vcpu]), now) + seconds

    def _overhang_per_vcpu(self) -> np.ndarray:
        if self._clock is None or self.window_end is None:
            return np.zeros_like(self._until)
        return np.maximum(self._until - self.window_end, 0.0)

    def overhang(self) -> float:
        """Lost time recorded (fluid mode) that lies after the window's end."""
        return float(self._overhang_per_vcpu().sum())

    def blocktime_in_window(self) -> np.ndarray:
        """Per-vCPU blocked time inside the window: what lies past its end is not counted, so that
        no vCPU is blocked longer than the window (the overhang is charged to faults first)."""
        return np.maximum(self.blocktime - self._overhang_per_vcpu(), 0.0)

    def _irqs_off(self, wall: float, at: float | None = None) -> None:
        """An interrupts-off run of ``wall`` seconds starting now (or at ``at``)."""
        if self._clock is not None and wall >= self.max_irqs_off:
            self._irqs_off_runs.append((self._clock() if at is None else at, wall))
        self.max_irqs_off = max(self.max_irqs_off, wall)

    # ``segment(ctx, 0.0, wall)`` for an interrupts-off ``ctx``: no stall, so only the run is noted
    # (the exact segment loop's call for a segment without a fault or a lock: one call less)
    irqs_off_segment = _irqs_off

    def max_irqs_off_in_window(self) -> float:
        """The longest interrupts-off run, counting only its part before the window's end."""
        if self._clock is None or self.window_end is None:
            return float(self.max_irqs_off)
        end = self.window_end
        return max((min(w, max(0.0, end - s)) for s, w in self._irqs_off_runs), default=0.0)

    def fault(self, vcpu: int, ctx: str, latency: float) -> None:
        self.record(vcpu, latency)
        self._lay_one(vcpu, latency)
        self.ctx_stall_s[self._row[ctx]] += latency
        self._ctx_faults[ctx] += 1
        self.max_stall = max(self.max_stall, latency)

    def count_faults(self, ctx: str, n: int, latency: float) -> None:
        """``n`` faults in context ``ctx`` at ``latency`` whose per-vCPU records the fluid step
        made itself (``record_counted``)."""
        self.ctx_stall_s[self._row[ctx]] += n * latency
        self._ctx_faults[ctx] += n
        self.max_stall = max(self.max_stall, latency)

    def fault_many(self, per_vcpu: np.ndarray, ctx: str, latency: float) -> None:
        n = int(per_vcpu.sum())
        if n == 0:
            return
        self.record_many(per_vcpu, latency)
        self._lay(per_vcpu, per_vcpu * latency)
        self.ctx_stall_s[self._row[ctx]] += n * latency
        self._ctx_faults[ctx] += n
        self.max_stall = max(self.max_stall, latency)

    def _stall(self, ctx: str, stall: float) -> None:
        row = self._row[ctx]
        st = self.seg_stats[row]
        st[0] += 1.0
        st[1] += stall
        st[2] = max(st[2], stall)
        self.seg_hist[row, hist_bin(stall)] += 1

    def segment(self, ctx: str, stall: float, wall: float) -> None:
        """A context segment ended after ``wall`` seconds, ``stall`` of them stalled."""
        if stall > 0:
            self._stall(ctx, stall)
        if ctx in _IRQS_OFF:
            self._irqs_off(wall)

    def segments(self, ctx: str, stall: np.ndarray, wall: np.ndarray) -> None:
        """A batch of segments."""
        for x in stall[stall > 0].tolist():
            self._stall(ctx, x)
        if ctx in (Ctx.IRQS_SOFT_OFF, Ctx.IRQS_HARD_OFF) and wall.size:
            self._irqs_off(float(wall.max()))

    def segment_stall_stats(self, ctx: str) -> tuple[int, float, float, np.ndarray]:
        """Segments of context ``ctx`` that stalled at all: how many, their total and longest
        stall, and their histogram over ``hist_edges()`` (the ends open)."""
        row = self._row[ctx]
        n, tot, mx = self.seg_stats[row].tolist()
        return int(n), tot, mx, self.seg_hist[row].copy()

    def spun(self, vcpu: int, seconds: float) -> None:
        self.spin[vcpu] += seconds
        self._lay_one(vcpu, seconds)
        self.max_spin = max(self.max_spin, seconds)

    def spinners(self, n: int) -> None:
        self.max_spinners = max(self.max_spinners, n)

    def summary(self, vcpus: int) -> dict[str, Any]:
        window = 0.0
        if self.window_start is not None and self.window_end is not None:
            window = max(0.0, self.window_end - self.window_start)
        lost = max(0.0, float(self.blocktime.sum() + self.spin.sum()) - self.overhang())
        bt = self.blocktime_in_window()
        edges = [0.0, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0, float("inf")]
        hist = np.histogram(bt, bins=edges)[0]
        return {
            # at most 1: the overhang takes off what lies past the window, up to float rounding
            "throughput_loss_frac": min(1.0, lost / (vcpus * window)) if window > 0 else 0.0,
            "max_stall_s": float(self.max_stall),
            "max_irqs_off_s": self.max_irqs_off_in_window(),
            "max_spin_s": float(self.max_spin),
            "max_concurrent_spinners": int(self.max_spinners),
            "spin_s_total": float(self.spin.sum()),
            "stall_s_by_context": {k: float(v) for k, v in self.ctx_stall.items()},
            "faults_by_context": dict(self.ctx_faults),
            "blocktime_per_vcpu_s": {
                "p50": float(np.quantile(bt, 0.5)),
                "p90": float(np.quantile(bt, 0.9)),
                "p99": float(np.quantile(bt, 0.99)),
                "max": float(bt.max()),
                "histogram": {
                    "edges_s": [e if np.isfinite(e) else None for e in edges],
                    "vcpus": [int(h) for h in hist],
                },
            },
        }

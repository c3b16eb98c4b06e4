"""``lpmsim run --trace``: a compact event trace of one run, recorded while it runs, kept as Parquet.

What is recorded (and how it stays bounded for the largest partitions, 1,920 vCPUs):

* **states**: per-vCPU intervals, one row each (``cpu``, ``kind``, ``label``, ``start_s``,
  ``end_s``), of five kinds that overlap freely: ``stall`` (stalled in the hypervisor), ``steal``
  (the fluid guest's episodes of many short faults, ``steal_frac`` >= 10 %, labelled by tens of
  per cent), ``ctx``
  (``preempt_off``, ``irqs_soft_off``, ``irqs_hard_off``), ``spin`` (spinning on a lock, the label
  is the lock's name) and ``rtas`` (inside an RTAS call, holding ``rtas_lock``).  Recorded by
  subscribing to ``CpuStates`` and, for RTAS, by asking the kernel's hooks ``in_rtas`` before each
  engine step (``rtas_call`` hard-disables interrupts before it takes the lock).  At most ``max_intervals`` rows are kept: the longest ones (``meta.dropped_intervals``
  and ``meta.kept_min_s`` say how many shorter ones were left out);
* **cpus**: per vCPU and kind, every interval counted (``count``, ``total_s``, ``max_s``), kept
  ones or not: what the aggregated view of a large partition ranks CPUs by;
* **series**: values sampled on a regular grid of between ``points`` and ``2 * points`` times (the
  step doubles, merging pairs of samples, whenever the grid would grow past that; at the resume the
  grid starts again, so post-copy has its own ``points``): missing pages,
  link utilisation (pages sent x page time / step), demand faults per second, the p50/p99 of the
  demand-fault latency of the faults in each step (from a histogram of 20 bins a decade: within
  12 %), the number of vCPUs stalled, with interrupts off and spinning, the mean steal share
  (``steal_mean``) and ``vcpus_blocked``, the vCPU-seconds blocked on demand faults per second
  (the average number of vCPUs waiting for a page: ``GuestMetrics.blocktime``'s growth);
* **reports**: the summary's ``events`` (the detectors' reports, with their log line and CPUs);
* **log**: the kernel log's records (time, caller, text), at most ``max_log`` of them;
* **phases**: the VASI states' times and the mobility flow's steps (``summary.json``'s
  ``migration.vasi`` and ``lpm``).

Recording changes nothing in the run: no engine event is added and nothing the model reads is
written, so a traced run's summary equals the untraced one's (``wall_s`` apart).  Sampling reads
the transfer's public state (``FluidTransfer.missing_total``, the exact link's
``pages.not_resident``, both transfers' ``counters``); the exact link advances lazily, so between
two of its own events its counts may lag by the pages of those events.

Sizes (measured, docs/report.md): ``lpmsim run --preset large --trace`` writes 85 kB; a trace at the
interval bound about 600 kB.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lpmsim.guest.cpustate import CpuStates, Ctx
from lpmsim.guest.metrics import GuestMetrics

if TYPE_CHECKING:
    import pyarrow as pa

    from lpmsim.hypervisor.migration import Migration
    from lpmsim.kernel.printk import LogRecord

TRACE_DIR = "trace"
TABLES = ("states", "cpus", "series", "reports", "log", "phases")
KINDS = ("stall", "steal", "ctx", "spin", "rtas")
MAX_INTERVALS = 200_000
MAX_LOG = 50_000
POINTS = 600
_NOTABLE_CTX = frozenset({Ctx.PREEMPT_OFF, Ctx.IRQS_SOFT_OFF, Ctx.IRQS_HARD_OFF})
_IRQS_OFF = frozenset({Ctx.IRQS_SOFT_OFF, Ctx.IRQS_HARD_OFF})

# fault-latency histogram: 20 bins a decade from 1 us to 1000 s
_LAT_LO = -6.0
_LAT_PER_DECADE = 20
_LAT_BINS = 9 * _LAT_PER_DECADE


def _lat_bin(latency: float) -> int:
    if latency <= 0.0:
        return 0
    k = int((math.log10(latency) - _LAT_LO) * _LAT_PER_DECADE)
    return min(max(k, 0), _LAT_BINS - 1)


def _hist_quantile(hist: np.ndarray, q: float) -> float:
    """The ``q`` quantile of a latency histogram (the geometric centre of its bin); NaN if empty."""
    total = hist.sum()
    if total <= 0:
        return math.nan
    k = int(np.searchsorted(np.cumsum(hist), q * total, side="left"))
    return float(10 ** (_LAT_LO + (min(k, _LAT_BINS - 1) + 0.5) / _LAT_PER_DECADE))


class TracedMetrics(GuestMetrics):
    """``GuestMetrics`` that also puts each demand fault's latency in the trace's current histogram."""

    def __init__(self, vcpus: int) -> None:
        super().__init__(vcpus)
        self.window = np.zeros(_LAT_BINS)

    def fault(self, vcpu: int, ctx: str, latency: float) -> None:
        super().fault(vcpu, ctx, latency)
        self.window[_lat_bin(latency)] += 1

    def fault_many(self, per_vcpu: np.ndarray, ctx: str, latency: float) -> None:
        super().fault_many(per_vcpu, ctx, latency)
        self.window[_lat_bin(latency)] += float(per_vcpu.sum())


@dataclass
class _Samples:
    t: list[float] = field(default_factory=list)
    missing: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    faults: list[float] = field(default_factory=list)
    stalled: list[int] = field(default_factory=list)
    irqs_off: list[int] = field(default_factory=list)
    spinning: list[int] = field(default_factory=list)
    steal: list[float] = field(default_factory=list)
    blocked: list[float] = field(default_factory=list)
    hist: list[np.ndarray] = field(default_factory=list)

    def halve(self, first: int) -> None:
        """From sample ``first`` on, keep every second sample (the end of each pair); the pair's
        histograms are added."""
        n = len(self.t) - (len(self.t) - first) % 2
        for name in ("t", "missing", "sent", "faults", "stalled", "irqs_off", "spinning", "steal", "blocked"):
            col = getattr(self, name)
            setattr(self, name, col[:first] + col[first + 1 : n : 2] + col[n:])
        h = self.hist
        self.hist = h[:first] + [h[i] + h[i + 1] for i in range(first, n, 2)] + h[n:]


class TraceRecorder:
    """Records one run's trace; ``lpmsim.runner.simulate`` drives it when asked to trace."""

    def __init__(
        self,
        ncpus: int,
        max_intervals: int = MAX_INTERVALS,
        points: int = POINTS,
        max_log: int = MAX_LOG,
        first_step_s: float = 0.01,
    ) -> None:
        self.ncpus = ncpus
        self.max_intervals = max_intervals
        self.points = points
        self.max_log = max_log
        self.metrics = TracedMetrics(ncpus)
        self._states: CpuStates | None = None
        self._in_rtas: Callable[[int], bool] = lambda _c: False
        self._mig: Migration | None = None
        self._page_time_s = 0.0
        # open intervals: kind -> per-CPU start (NaN: none open) and label
        self._open_t = {k: [math.nan] * ncpus for k in KINDS}
        self._open_label: dict[str, list[str]] = {k: [""] * ncpus for k in KINDS}
        self._count = {k: np.zeros(ncpus, dtype=np.int64) for k in KINDS}
        self._total = {k: np.zeros(ncpus) for k in KINDS}
        self._max = {k: np.zeros(ncpus) for k in KINDS}
        self._rows_cpu: list[int] = []
        self._rows_kind: list[int] = []
        self._rows_label: list[str] = []
        self._rows_start: list[float] = []
        self._rows_end: list[float] = []
        self.dropped = 0
        self.kept_min_s = 0.0
        self._maybe_rtas: dict[int, float] = {}
        self._last_step = 0.0
        self._rtas_cpus: set[int] = set()
        self._n_stalled = 0
        self._n_irqs_off = 0
        self._n_spinning = 0
        self._steal = [0.0] * ncpus
        self._steal_sum = 0.0
        self._resumed_at: int | None = None  # index of the first sample after the resume
        self._samples = _Samples()
        self._step = first_step_s
        self._first_step = first_step_s
        self._next = 0.0
        self.end_s: float | None = None
        self.log: list[LogRecord] = []
        self.log_total = 0

    # -- wiring (lpmsim.runner) ----------------------------------------------------------------
    def attach_cpus(self, states: CpuStates) -> None:
        self._states = states
        for c in range(len(states)):
            self._observe(c, 0.0)
        states.subscribe(self._observe, steal=True)

    def attach_kernel(
        self, in_rtas: Callable[[int], bool], migration: Migration | None, page_time_s: float
    ) -> None:
        self._in_rtas = in_rtas
        self._mig = migration
        self._page_time_s = page_time_s
        if migration is not None:  # a callback on an existing event: no engine event is added
            migration.resumed.add_callback(self._on_resume)

    def _on_resume(self, _ev: object) -> None:
        """The resume: sample up to it and at it, then start the grid again (post-copy's own)."""
        mig = self._mig
        assert mig is not None and mig.resume_s is not None
        t = mig.resume_s
        self._sample_until(t)
        self._sample(t)
        self._resumed_at = len(self._samples.t)
        self._step = self._first_step
        self._next = t + self._step

    # -- per-vCPU states -----------------------------------------------------------------------
    def _open(self, kind: str, cpu: int, t: float, label: str) -> None:
        self._open_t[kind][cpu] = t
        self._open_label[kind][cpu] = label

    def _close(self, kind: str, cpu: int, t: float) -> None:
        start = self._open_t[kind][cpu]
        self._open_t[kind][cpu] = math.nan
        dur = t - start
        if dur <= 0.0:
            return
        self._count[kind][cpu] += 1
        self._total[kind][cpu] += dur
        if dur > self._max[kind][cpu]:
            self._max[kind][cpu] = dur
        if dur < self.kept_min_s:
            self.dropped += 1
            return
        self._rows_cpu.append(cpu)
        self._rows_kind.append(KINDS.index(kind))
        self._rows_label.append(self._open_label[kind][cpu])
        self._rows_start.append(start)
        self._rows_end.append(t)
        if len(self._rows_cpu) >= 2 * self.max_intervals:
            self._prune()

    def _prune(self) -> None:
        """Keep the ``max_intervals`` longest intervals."""
        start = np.asarray(self._rows_start)
        dur = np.asarray(self._rows_end) - start
        n = self.max_intervals
        if dur.size <= n:
            return
        keep = np.sort(np.argpartition(-dur, n - 1)[:n])
        cut = float(dur[keep].min())
        self.dropped += dur.size - n
        self.kept_min_s = max(self.kept_min_s, cut)
        self._rows_cpu = [self._rows_cpu[i] for i in keep]
        self._rows_kind = [self._rows_kind[i] for i in keep]
        self._rows_label = [self._rows_label[i] for i in keep]
        self._rows_start = [self._rows_start[i] for i in keep]
        self._rows_end = [self._rows_end[i] for i in keep]

    def _toggle(self, kind: str, cpu: int, t: float, label: str | None) -> int:
        """Bring ``kind``'s interval on ``cpu`` in line with ``label`` (None: none); returns the
        change in the number of CPUs in that kind (-1, 0, +1)."""
        is_open = not math.isnan(self._open_t[kind][cpu])
        if is_open and label == self._open_label[kind][cpu]:
            return 0
        if is_open:
            self._close(kind, cpu, t)
        if label is not None:
            self._open(kind, cpu, t, label)
        if kind == "rtas":
            if label is None:
                self._rtas_cpus.discard(cpu)
            else:
                self._rtas_cpus.add(cpu)
        return (label is not None) - is_open

    def _observe(self, cpu: int, t: float) -> None:
        assert self._states is not None
        c = self._states.cpus[cpu]
        self._n_stalled += self._toggle("stall", cpu, t, "stalled" if c.stalled else None)
        ctx = c.ctx
        was_off = self._open_label["ctx"][cpu] in _IRQS_OFF and not math.isnan(self._open_t["ctx"][cpu])
        self._toggle("ctx", cpu, t, ctx.value if ctx in _NOTABLE_CTX else None)
        self._n_irqs_off += (ctx in _IRQS_OFF) - was_off
        self._n_spinning += self._toggle("spin", cpu, t, c.spinning)
        f = c.steal_frac
        if f != self._steal[cpu]:
            self._steal_sum += f - self._steal[cpu]
            self._steal[cpu] = f
            self._toggle("steal", cpu, t, f"{int(f * 10) * 10}%" if f >= 0.1 else None)
        rtas = self._in_rtas(cpu)
        self._toggle("rtas", cpu, t, "rtas" if rtas else None)
        if ctx == Ctx.IRQS_HARD_OFF and not rtas:
            # rtas_call hard-disables first, then takes the lock: look again after this step
            self._maybe_rtas.setdefault(cpu, t)

    def before_step(self, now: float, nxt: float) -> None:
        """Called by the runner before each engine step: ``now`` the time of the step just done,
        ``nxt`` the time of the next one."""
        if self._maybe_rtas:
            for cpu, t in self._maybe_rtas.items():
                if self._in_rtas(cpu):
                    self._toggle("rtas", cpu, t, "rtas")
            self._maybe_rtas.clear()
        if self._rtas_cpus:  # RTAS calls hold one global lock: one CPU at a time, mostly none
            for cpu in list(self._rtas_cpus):
                if not self._in_rtas(cpu):
                    self._toggle("rtas", cpu, now, None)
        self._last_step = nxt
        if nxt > self._next:
            self._sample_until(nxt)

    # -- time series ---------------------------------------------------------------------------
    def _sample_until(self, until: float) -> None:
        """Samples at the grid times before ``until``: the state now holds until then.  At the
        resume the grid starts again at its first step: post-copy gets its own ``points``."""
        first = self._resumed_at or 0
        while self._next < until:
            self._sample(self._next)
            self._next += self._step
            if len(self._samples.t) - first >= 2 * self.points:
                self._samples.halve(first)
                self._step *= 2
                self._next = self._samples.t[-1] + self._step

    def _sample(self, t: float) -> None:
        s = self._samples
        missing = math.nan
        sent = 0.0
        mig = self._mig
        if mig is not None and mig.resume_s is not None:
            if mig.fluid is not None:
                missing = float(mig.fluid.missing_total)
                c = mig.fluid.counters
            elif mig.link is not None:
                missing = float(mig.link.pages.not_resident)
                c = mig.link.counters
            else:
                c = mig.counters
            sent = float(c.pushed + c.demanded + c.prefetched)
        s.t.append(t)
        s.missing.append(missing)
        s.sent.append(sent)
        s.faults.append(float(self.metrics.count))
        s.stalled.append(self._n_stalled)
        s.irqs_off.append(self._n_irqs_off)
        s.spinning.append(self._n_spinning)
        s.steal.append(self._steal_sum / self.ncpus)
        s.blocked.append(float(self.metrics.blocktime.sum()))
        s.hist.append(self.metrics.window.copy())
        self.metrics.window[:] = 0.0

    # -- the end -------------------------------------------------------------------------------
    def finish(self, end_s: float, log: Sequence[LogRecord]) -> None:
        """Close what is open at the run's end (``end_s``, the summary's, or the last engine step
        if later: the kernel's tail after the transfer), take the last sample, keep the log."""
        if self.end_s is not None:
            return
        end_s = max(end_s, self._last_step)
        self.end_s = end_s
        self._sample_until(end_s)
        self._sample(end_s)
        for kind in KINDS:
            for cpu, start in enumerate(self._open_t[kind]):
                if not math.isnan(start):
                    self._close(kind, cpu, max(end_s, start))
        self._prune()
        self.log_total = len(log)
        self.log = list(log[: self.max_log])

    def build(self, summary: dict[str, Any]) -> RunTrace:
        """The trace's tables, once the run is summarised."""
        import pyarrow as pa

        assert self.end_s is not None, "finish() first"
        order = np.lexsort((np.asarray(self._rows_start), np.asarray(self._rows_cpu, dtype=np.int64)))
        kinds = pa.array([KINDS[self._rows_kind[i]] for i in order], pa.string())
        states = pa.table(
            {
                "cpu": pa.array([self._rows_cpu[i] for i in order], pa.int32()),
                "kind": kinds.dictionary_encode(),
                "label": pa.array([self._rows_label[i] for i in order], pa.string()).dictionary_encode(),
                "start_s": pa.array([self._rows_start[i] for i in order], pa.float64()),
                "end_s": pa.array([self._rows_end[i] for i in order], pa.float64()),
            }
        )
        cpus_cols: dict[str, Any] = {"cpu": pa.array(np.arange(self.ncpus), pa.int32())}
        for kind in KINDS:
            cpus_cols[f"{kind}_count"] = pa.array(self._count[kind], pa.int64())
            cpus_cols[f"{kind}_total_s"] = pa.array(self._total[kind], pa.float64())
            cpus_cols[f"{kind}_max_s"] = pa.array(self._max[kind], pa.float64())
        series = self._series_table()
        reports = _reports_table(summary.get("events") or [])
        log = pa.table(
            {
                "time_s": pa.array([r.time_s for r in self.log], pa.float64()),
                "caller": pa.array([r.caller for r in self.log], pa.string()),
                "text": pa.array([r.text for r in self.log], pa.string()),
            }
        )
        phases = _phases_table(summary)
        sc = summary.get("scenario") or {}
        meta = {
            "lpmsim_version": summary.get("lpmsim_version"),
            "scenario": sc.get("name"),
            "seed": summary.get("seed"),
            "mode": (summary.get("sim") or {}).get("mode"),
            "vcpus": self.ncpus,
            "end_s": self.end_s,
            "outcome": summary.get("outcome"),
            "max_intervals": self.max_intervals,
            "dropped_intervals": self.dropped,
            "kept_min_s": self.kept_min_s,
            "series_step_s": self._step,
            "series_resume_index": self._resumed_at,
            "log_total": self.log_total,
            "log_kept": len(self.log),
        }
        return RunTrace(
            meta=meta,
            states=states,
            cpus=pa.table(cpus_cols),
            series=series,
            reports=reports,
            log=log,
            phases=phases,
        )

    def _series_table(self) -> pa.Table:
        import pyarrow as pa

        s = self._samples
        t = np.asarray(s.t)
        dt = np.diff(t, prepend=0.0)
        sent = np.asarray(s.sent)
        faults = np.asarray(s.faults)
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.where(dt > 0, np.diff(sent, prepend=0.0) * self._page_time_s / dt, np.nan)
            rate = np.where(dt > 0, np.diff(faults, prepend=0.0) / dt, np.nan)
            blocked = np.where(dt > 0, np.diff(np.asarray(s.blocked), prepend=0.0) / dt, np.nan)
        util = np.minimum(util, 1.0)
        return pa.table(
            {
                "time_s": pa.array(t, pa.float64()),
                "missing_pages": pa.array(np.asarray(s.missing), pa.float64()),
                "link_utilisation": pa.array(util, pa.float64()),
                "demand_faults_per_s": pa.array(rate, pa.float64()),
                "fault_latency_p50_s": pa.array([_hist_quantile(h, 0.5) for h in s.hist], pa.float64()),
                "fault_latency_p99_s": pa.array([_hist_quantile(h, 0.99) for h in s.hist], pa.float64()),
                "cpus_stalled": pa.array(s.stalled, pa.int32()),
                "cpus_irqs_off": pa.array(s.irqs_off, pa.int32()),
                "cpus_spinning": pa.array(s.spinning, pa.int32()),
                "steal_mean": pa.array(s.steal, pa.float64()),
                "vcpus_blocked": pa.array(blocked, pa.float64()),
            }
        )


def _reports_table(events: Sequence[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {
            "time_s": pa.array([float(e["time_s"]) for e in events], pa.float64()),
            "detector": pa.array([str(e["detector"]) for e in events], pa.string()),
            "kind": pa.array([str(e["kind"]) for e in events], pa.string()),
            "cpus": pa.array([[int(c) for c in e["cpus"]] for e in events], pa.list_(pa.int32())),
            "by": pa.array([e.get("by") for e in events], pa.int32()),
            "line": pa.array([e.get("line") for e in events], pa.string()),
            "cause": pa.array([e.get("cause") for e in events], pa.string()),
        }
    )


def _phases_table(summary: dict[str, Any]) -> pa.Table:
    import pyarrow as pa

    rows: list[tuple[str, str, float]] = []
    mig = summary.get("migration") or {}
    for name, t in (mig.get("vasi") or {}).items():
        if t is not None:
            rows.append(("vasi", str(name).removesuffix("_s"), float(t)))
    for name, t in (summary.get("lpm") or {}).items():
        if t is not None:
            rows.append(("mobility", str(name).removesuffix("_s"), float(t)))
    return pa.table(
        {
            "source": pa.array([r[0] for r in rows], pa.string()),
            "name": pa.array([r[1] for r in rows], pa.string()),
            "time_s": pa.array([r[2] for r in rows], pa.float64()),
        }
    )


@dataclass(frozen=True)
class RunTrace:
    """A run's trace: Arrow tables (``states``, ``cpus``, ``series``, ``reports``, ``log``,
    ``phases``; see the module docstring) and ``meta`` (the bounds and what they left out)."""

    meta: dict[str, Any]
    states: pa.Table
    cpus: pa.Table
    series: pa.Table
    reports: pa.Table
    log: pa.Table
    phases: pa.Table

    def table(self, name: str) -> pa.Table:
        if name not in TABLES:
            raise KeyError(f"no trace table {name!r} (one of {', '.join(TABLES)})")
        t: pa.Table = getattr(self, name)
        return t

    def write(self, out: Path) -> Path:
        """Write ``out/trace/<table>.parquet`` and ``out/trace/meta.json``; returns the directory."""
        import pyarrow.parquet as pq

        d = out / TRACE_DIR
        d.mkdir(parents=True, exist_ok=True)
        for name in TABLES:
            pq.write_table(self.table(name), d / f"{name}.parquet", compression="zstd")
        (d / "meta.json").write_text(
            json.dumps(self.meta, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        return d

    @classmethod
    def read(cls, out: Path) -> RunTrace:
        """Read what ``write`` wrote under ``out`` (raises OSError / ValueError on a bad trace)."""
        import pyarrow.parquet as pq

        d = out / TRACE_DIR
        meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError(f"{d / 'meta.json'}: not a JSON object")
        tables = {name: pq.read_table(d / f"{name}.parquet") for name in TABLES}
        return cls(meta=meta, **tables)


def has_trace(out: Path) -> bool:
    return (out / TRACE_DIR / "meta.json").is_file()

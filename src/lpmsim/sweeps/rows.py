"""One run of a comparison or a sweep: what to run (``RunSpec``), what it left (``RunResult``), and
the flat row of its summary that ``runs.parquet`` and the result store hold (``COLUMNS``).

``run_one`` runs a spec in the calling process and never raises: an exception becomes the row's
``error``.  It is what every executor runs, in this process, a spawned process or a Dask worker.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lpmsim.config.scenario import Scenario
from lpmsim.kernel.model import DETECTORS
from lpmsim.sweeps.stats import median_of

Simulate = Callable[[Scenario], dict[str, Any]]
"""What runs one scenario: ``lpmsim.runner.run_scenario`` unless a caller (a test) gives another
top-level, picklable function."""

OUTCOMES = ("survived", "panic", "crash")

COLUMNS: tuple[tuple[str, str], ...] = (
    ("variant", "str"),
    ("policy", "str"),
    ("seed", "int"),
    ("ok", "bool"),
    ("error", "str"),
    ("outcome", "str"),
    ("crash_cause", "str"),
    ("crash_s", "float"),
    *((f"reports_{d}", "int") for d in DETECTORS),
    *((f"reports_migration_{d}", "int") for d in DETECTORS),
    *((f"reports_bug_{d}", "int") for d in DETECTORS),
    ("hv_stall_annotations", "int"),
    ("nmi_ipi_sent", "int"),
    ("nmi_ipi_timed_out", "int"),
    ("nmi_ipi_unrecoverable", "int"),
    ("bugs_injected", "int"),
    ("bugs_detected", "int"),
    ("detection_delay_median_s", "float"),
    ("detection_delays_s", "list[float]"),
    ("migration_completed", "bool"),
    ("fault_latency_p99_s", "float"),
    ("blocktime_per_vcpu_p99_s", "float"),
    ("postcopy_s", "float"),
    ("throughput_loss_frac", "float"),
    ("demand_faults", "int"),
    ("wall_s", "float"),
)
"""Every column of a row (and of ``runs.parquet``) with its type; None is allowed in each but the
first four.  docs/compare.md says what each one means."""

COLUMN_NAMES = tuple(name for name, _ in COLUMNS)

Row = dict[str, Any]
"""A run's row: exactly the keys of ``COLUMN_NAMES``, each value of its column's type or None."""


@dataclass(frozen=True)
class RunSpec:
    """One run: a variant's validated scenario with ``sim.seed = seed``.

    ``key`` identifies the run across sessions (``lpmsim.sweeps.plan.run_key``: scenario hash,
    variant, seed); ``point`` is the sweep's axis point, as (field, value) pairs."""

    variant: str
    policy: str
    seed: int
    scenario: Scenario
    key: str = ""
    point: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class RunResult:
    """What a run leaves: its row (``COLUMNS``), the traceback if it failed, and how many times it
    was started (more than 1 when a worker died under it)."""

    key: str
    row: Row
    traceback: str | None = None
    attempts: int = 1
    point: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def variant(self) -> str:
        return str(self.row["variant"])

    @property
    def seed(self) -> int:
        return int(self.row["seed"])

    @property
    def ok(self) -> bool:
        return bool(self.row["ok"])

    @property
    def error(self) -> str | None:
        err = self.row["error"]
        return None if err is None else str(err)


def _get(d: Any, *path: str) -> Any:
    """``d[a][b]...`` or None if any level is missing or not a mapping."""
    for key in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def _int(x: Any) -> int | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return int(x)


def _count(x: Any) -> int | None:
    """A report count given as a number, a list of reports or ``{"reports": n}``."""
    if isinstance(x, list | tuple):
        return len(x)
    if isinstance(x, Mapping):
        return _int(x.get("reports", x.get("count")))
    return _int(x)


def _bug_started(bug: Mapping[str, Any]) -> bool:
    """A bug counts as injected once it started (``status`` not_started: its time came after the
    end of the run, or its CPU was already taken by an earlier bug)."""
    if "status" in bug:
        return bug["status"] != "not_started"
    return bug.get("start_s", 0.0) is not None


def _bug_detected(bug: Mapping[str, Any]) -> bool:
    if "status" in bug:
        return bool(bug["status"] == "detected")
    if "detected_s" in bug:
        return bug["detected_s"] is not None
    if "missed" in bug:
        return not bug["missed"]
    return bug.get("detected_by") is not None


def empty_row(spec: RunSpec) -> Row:
    row: Row = dict.fromkeys(COLUMN_NAMES)
    row.update(variant=spec.variant, policy=spec.policy, seed=spec.seed, ok=False, detection_delays_s=[])
    return row


def summary_row(spec: RunSpec, summary: Mapping[str, Any]) -> Row:
    """The flat row of a finished run (missing parts of the summary become None)."""
    row = empty_row(spec)
    row["ok"] = True
    row["outcome"] = summary.get("outcome")
    crash = summary.get("crash")
    row["crash_cause"] = _get(crash, "cause")
    row["crash_s"] = _num(_get(crash, "time_s"))
    wd = summary.get("watchdogs")
    for d in DETECTORS:
        row[f"reports_{d}"] = _count(_get(wd, d))
    split = summary.get("reports")
    if isinstance(split, Mapping):
        for cause in ("migration", "bug"):
            by = split.get(cause)
            if isinstance(by, Mapping):
                for d in DETECTORS:
                    row[f"reports_{cause}_{d}"] = _count(by.get(d, 0))
    for k in ("sent", "timed_out", "unrecoverable"):
        row[f"nmi_ipi_{k}"] = _int(_get(wd, "nmi_ipi", k))
    # the annotate policy's "memory access stalled N s in the hypervisor" lines (0 without it)
    row["hv_stall_annotations"] = _count(_get(wd, "hv_stall")) or 0
    bugs = summary.get("bugs")
    bug_list = (
        [b for b in bugs if isinstance(b, Mapping) and _bug_started(b)] if isinstance(bugs, list) else []
    )
    detected = [b for b in bug_list if _bug_detected(b)]
    delays = [x for x in (_num(b.get("delay_s")) for b in detected) if x is not None]
    row["bugs_injected"] = len(bug_list)
    row["bugs_detected"] = len(detected)
    row["detection_delays_s"] = delays
    row["detection_delay_median_s"] = median_of(delays)
    mig = summary.get("migration")
    if _get(mig, "enabled"):
        row["migration_completed"] = bool(_get(mig, "completed"))
        row["fault_latency_p99_s"] = _num(_get(mig, "fault_latency_s", "p99"))
        row["blocktime_per_vcpu_p99_s"] = _num(_get(mig, "blocktime_s", "per_vcpu_p99"))
        row["postcopy_s"] = _num(_get(mig, "postcopy_s"))
        row["demand_faults"] = _int(_get(mig, "demand_faults"))
    row["throughput_loss_frac"] = _num(_get(summary, "guest", "throughput_loss_frac"))
    row["wall_s"] = _num(summary.get("wall_s"))
    return row


def error_line(exc: BaseException) -> str:
    """``Type: message`` on one line."""
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def failed_result(spec: RunSpec, error: str, tb: str | None = None, attempts: int = 1) -> RunResult:
    """The result of a run that did not finish (``error`` is one line)."""
    row = empty_row(spec)
    row["error"] = error
    return RunResult(spec.key, row, tb, attempts, spec.point)


def run_one(spec: RunSpec, simulate: Simulate | None = None) -> RunResult:
    """Run ``spec`` (in this process); any exception becomes the row's ``error``, never a raise."""
    t0 = time.perf_counter()
    try:
        if simulate is None:
            from lpmsim import runner  # looked up at call time so that tests can patch it

            simulate = runner.run_scenario
        summary = simulate(spec.scenario)
        return RunResult(spec.key, summary_row(spec, summary), point=spec.point)
    except Exception as exc:
        res = failed_result(spec, error_line(exc), traceback.format_exc())
        res.row["wall_s"] = time.perf_counter() - t0
        return res

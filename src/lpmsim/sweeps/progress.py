"""Progress of many runs on stderr: a bar on a terminal, otherwise a line every 10 % of the runs.

The bar shows runs done of total (runs a resumed sweep found in its store count as done), runs
failed, runs per minute and the time left, both over the runs of this session.  A failed run is
printed as it fails (above the bar).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from lpmsim.sweeps.plan import point_text
from lpmsim.sweeps.rows import RunResult


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Reporter:
    """Call it with (result, runs done, runs in total) after each run; use as a context manager."""

    def __init__(
        self, console: Console, total: int, done: int = 0, quiet: bool = False, label: str = "runs"
    ) -> None:
        self.console = console
        self.total = total
        self.start_done = done
        self.label = label
        self.failed = 0
        self.quiet = quiet
        self.bar: Progress | None = None
        self.task: Any = None
        todo = max(1, total - done)
        self.step = max(1, -(-todo // 10))
        self.next_line = done + self.step
        self.t0 = time.monotonic()

    def rate_per_min(self, done: int) -> float | None:
        elapsed = time.monotonic() - self.t0
        n = done - self.start_done
        return 60.0 * n / elapsed if n > 0 and elapsed > 0 else None

    def eta_s(self, done: int) -> float | None:
        rate = self.rate_per_min(done)
        return None if rate is None else 60.0 * (self.total - done) / rate

    def __enter__(self) -> Reporter:
        if not self.quiet and self.console.is_terminal:
            self.bar = Progress(
                TextColumn(f"[bold]{self.label}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "runs, {task.fields[failed]} failed, {task.fields[rate]}/min, ETA {task.fields[eta]}"
                ),
                console=self.console,
                transient=True,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task(
                "runs", total=self.total, completed=self.start_done, failed=0, rate="-", eta=_hms(None)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def __call__(self, res: RunResult, done: int, total: int) -> None:
        if not res.ok:
            self.failed += 1
            at = f" at {point_text(res.point)}" if res.point else ""
            self.console.print(f"run failed: {res.variant}{at} seed {res.seed}: {res.error}", markup=False)
        rate = self.rate_per_min(done)
        rate_text = "-" if rate is None else f"{rate:,.1f}"
        if self.bar is not None:
            self.bar.update(
                self.task, completed=done, failed=self.failed, rate=rate_text, eta=_hms(self.eta_s(done))
            )
        elif not self.quiet and (done >= self.next_line or done == total):
            self.next_line = done + self.step
            self.console.print(
                f"{self.label}: {done}/{total} runs done, {self.failed} failed, {rate_text} runs/min, "
                f"ETA {_hms(self.eta_s(done))}, {time.monotonic() - self.t0:,.1f} s",
                markup=False,
            )

"""What ``lpmsim sweep`` and ``lpmsim compare`` share: the executor options, the checks of ``--out``
and of the store it holds, and a session run into that store (progress, SIGTERM, refusals).

Both commands keep their runs in the result store of ``--out`` (``sweeps/store.py``): each run's row
is committed as it finishes, the same command resumes, another plan in the same directory is
refused with one line unless ``--fresh``.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, TypeVar

import typer

from lpmsim.cli.common import err_console, fail
from lpmsim.sweeps.executors import Executor, LocalExecutor
from lpmsim.sweeps.plan import Plan
from lpmsim.sweeps.progress import Reporter
from lpmsim.sweeps.store import ResultStore, StoreError, store_path
from lpmsim.sweeps.sweep import Progress, incompatible

T = TypeVar("T")


class ExecutorName(StrEnum):
    local = "local"
    dask = "dask"


ExecutorOpt = Annotated[
    ExecutorName, typer.Option("--executor", "-e", help="local processes, or a dask.distributed cluster.")
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "--jobs",
        "-j",
        min=1,
        help="Worker processes (local), or the workers of a LocalCluster on 127.0.0.1 (dask); "
        "default: the number of CPUs.",
        show_default=False,
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Address of an existing dask.distributed scheduler, e.g. tcp://10.0.0.5:8786.",
        show_default=False,
    ),
]
FreshOpt = Annotated[
    bool, typer.Option("--fresh", help="Discard a store in --out that holds another plan (or any).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print compare.json on stdout instead of the tables.")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress, no tables (failures still shown).")
]


def check_out(out: Path) -> None:
    """Refuse an output directory that is a file or cannot be written (nothing is created)."""
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: exists and is not a directory")
    target = out
    while not target.exists():
        if target.parent == target:
            break
        target = target.parent
    if not target.is_dir():
        fail(f"--out {out}: {target} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        fail(f"--out {out}: cannot write in {target}: {exc.strerror or exc}")


def resumable(out: Path, plan: Plan, fresh: bool) -> int:
    """Runs of ``plan`` already in the store of ``out`` (0 for none or ``--fresh``); refuses a store
    that holds another plan or is not a store."""
    path = store_path(out)
    if fresh or not path.exists():
        return 0
    try:
        with ResultStore(path) as store:
            info = store.info()
            if info is None:
                return 0
            if info.digest != plan.digest:
                fail(incompatible(path, info.runs, str(info.description.get("name")), len(plan.specs)))
            return store.count()
    except StoreError as exc:
        fail(f"{exc} (use --fresh to replace it)")


def make_executor(kind: ExecutorName, workers: int | None, scheduler: str | None) -> Executor:
    if kind is ExecutorName.local:
        if scheduler is not None:
            fail("--scheduler needs --executor dask")
        return LocalExecutor(workers)
    if scheduler is not None and workers is not None:
        fail("give either --scheduler ADDRESS (an existing cluster) or --workers N (a local one), not both")
    from lpmsim.sweeps.dask_executor import DaskExecutor, DaskUnavailable

    try:
        return DaskExecutor(scheduler, workers or os.cpu_count() or 1)
    except DaskUnavailable as exc:
        fail(str(exc))
    except (OSError, TimeoutError, ValueError) as exc:
        where = f"the scheduler at {scheduler}" if scheduler else "a LocalCluster on 127.0.0.1"
        msg = " ".join(str(exc).split()) or type(exc).__name__
        fail(f"--executor dask: cannot connect to {where}: {msg}")


def executor_args(kind: ExecutorName, workers: int | None, scheduler: str | None) -> list[str]:
    """The executor options as they would be typed to repeat the command."""
    cmd: list[str] = []
    if kind is not ExecutorName.local:
        cmd += ["--executor", kind.value]
    if scheduler is not None:
        cmd += ["--scheduler", scheduler]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return cmd


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a batch system pre-empting the job) stops the session as Ctrl-C does."""

    def handler(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_session(
    label: str,
    plan: Plan,
    out: Path,
    executor: tuple[ExecutorName, int | None, str | None],
    fresh: bool,
    quiet: bool,
    run: Callable[[Executor, Progress], T],
) -> T:
    """Check ``out`` and its store, start the executor, and call ``run(executor, progress)`` under
    a progress bar, with SIGTERM as Ctrl-C; every refusal is one line and exit code 2."""
    check_out(out)
    resumed = resumable(out, plan, fresh)
    ex = make_executor(*executor)
    try:
        if resumed and not quiet:
            err_console.print(
                f"resuming: {resumed} of {len(plan.specs)} runs already in {store_path(out)}", markup=False
            )
        with sigterm_interrupts(), Reporter(err_console, len(plan.specs), resumed, quiet, label=label) as rep:
            return run(ex, rep)
    except StoreError as exc:
        fail(str(exc))
    finally:
        ex.close()

"""Where runs execute: this process, or a pool of local processes that die with their parent.

An executor takes specs and yields one ``RunResult`` per spec, in the order runs finish.  Results
never depend on the executor: a run is a function of its scenario and seed (``rows.run_one``).

``LocalExecutor`` with more than one job starts ``spawn`` processes.  Each worker runs a watchdog
thread that exits the worker as soon as its parent is gone (``os.getppid()`` changes when the
parent dies, whatever killed it, ``kill -9`` included), so no worker outlives a killed sweep by more
than ``PARENT_POLL_S``; the multiprocessing resource tracker exits when the last process holding
its pipe does.  A worker that dies under a run (the pool breaks) is replaced: the runs that were in
flight are started again one at a time in a fresh pool, so that the run that kills its worker is
identified; a run is recorded as failed once it has been started ``1 + MAX_RETRIES`` times.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from lpmsim.sweeps.rows import RunResult, RunSpec, Simulate, error_line, failed_result, run_one

MAX_RETRIES = 2
"""A run whose worker dies is started again at most this many times, then recorded as failed."""

PARENT_POLL_S = 0.25


class Executor(Protocol):
    """Runs specs; ``run`` yields a result per spec as runs finish; ``close`` stops what is left."""

    workers: int

    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]: ...

    def close(self) -> None: ...

    @property
    def description(self) -> str: ...


def default_jobs() -> int:
    return os.cpu_count() or 1


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(1)


def worker_init(parent: int) -> None:
    """Runs first in every local worker process."""
    # Ctrl-C goes to the whole process group: the parent stops the pool, workers must not print
    # tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), name="lpmsim-parent-watch", daemon=True).start()


def worker_died(spec: RunSpec, attempts: int, exc: BaseException) -> RunResult:
    return failed_result(
        spec,
        f"WorkerDied: the worker process died while running it, {attempts} time(s) ({error_line(exc)})",
        None,
        attempts,
    )


class LocalExecutor:
    """``jobs`` local processes (``jobs=1``: this process)."""

    def __init__(self, jobs: int | None = None, simulate: Simulate | None = None) -> None:
        self.workers = default_jobs() if jobs is None else jobs
        if self.workers < 1:
            raise ValueError(f"jobs must be >= 1, got {self.workers}")
        self.simulate = simulate
        self._pool: ProcessPoolExecutor | None = None

    @property
    def description(self) -> str:
        return f"local, {self.workers} process(es)"

    def _new_pool(self, n: int) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(
            max_workers=n, mp_context=ctx, initializer=worker_init, initargs=(os.getpid(),)
        )
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for proc in list(getattr(pool, "_processes", {}).values()):
            if proc.is_alive():
                proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]:
        if self.workers == 1 or len(specs) <= 1:
            for spec in specs:
                yield run_one(spec, self.simulate)
            return
        n = min(self.workers, len(specs))
        queue = deque(specs)
        suspects: deque[RunSpec] = deque()  # in flight when a worker died: run alone next
        attempts: dict[int, int] = {}
        inflight: dict[Future[RunResult], RunSpec] = {}
        pool = self._new_pool(n)
        try:
            while queue or suspects or inflight:
                if suspects:
                    if not inflight:
                        spec = suspects.popleft()
                        inflight[pool.submit(run_one, spec, self.simulate)] = spec
                else:
                    while queue and len(inflight) < n:
                        spec = queue.popleft()
                        inflight[pool.submit(run_one, spec, self.simulate)] = spec
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                broken = False
                for fut in finished:
                    spec = inflight.pop(fut)
                    exc = fut.exception()
                    if exc is None:
                        res = fut.result()
                        k = attempts.get(id(spec), 0)
                        yield res if not k else RunResult(res.key, res.row, res.traceback, k + 1, res.point)
                    elif isinstance(exc, BrokenProcessPool):
                        broken = True
                        k = attempts[id(spec)] = attempts.get(id(spec), 0) + 1
                        if k > MAX_RETRIES:
                            yield worker_died(spec, k, exc)
                        else:
                            suspects.append(spec)
                    else:  # the spec or the function could not be sent to the worker
                        yield failed_result(spec, error_line(exc), None, attempts.get(id(spec), 0) + 1)
                if broken:
                    # every other run in flight fails with the pool: collect them, then a fresh pool
                    for fut in list(inflight):
                        spec = inflight.pop(fut)
                        exc = fut.exception()
                        if exc is None:
                            yield fut.result()
                            continue
                        k = attempts[id(spec)] = attempts.get(id(spec), 0) + 1
                        if k > MAX_RETRIES:
                            yield worker_died(spec, k, exc)
                        else:
                            suspects.append(spec)
                    self.close()
                    pool = self._new_pool(n)
        finally:
            self.close()


def drive(
    executor: Executor,
    specs: Sequence[RunSpec],
    on_result: Callable[[RunResult], None],
) -> bool:
    """Run ``specs`` seed by seed across variants and points (so that an interrupted run has about
    as many runs of each), calling ``on_result`` for each as it finishes; returns whether Ctrl-C
    interrupted it (the executor is then stopped)."""
    order = sorted(range(len(specs)), key=lambda i: (specs[i].seed, i))
    try:
        for res in executor.run([specs[i] for i in order]):
            on_result(res)
    except KeyboardInterrupt:
        executor.close()
        return True
    return False

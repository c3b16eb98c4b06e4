"""Runs on a ``dask.distributed`` cluster: an existing scheduler, or a ``LocalCluster`` on 127.0.0.1.

The worker side needs only ``pip install lpmsim[dask]``: each task is ``rows.run_one`` on a pickled
``RunSpec`` (the validated scenario with its seed), so results are bit-identical to a local run.

A worker that dies under a run: the scheduler starts the run again on another worker; once the
task has been on ``allowed-failures + 1`` dying workers it fails with ``KilledWorker`` and the run
is recorded as failed with that reason (the sweep goes on).  The ``LocalCluster`` this starts sets
``distributed.scheduler.allowed-failures`` to ``MAX_RETRIES`` (2) and ``worker-saturation`` to 1.0:
a worker then holds only the run it is running, so a healthy run is never queued on a worker that
another run kills (dask counts every task in processing on a dying worker towards its failures); an
external scheduler uses its own settings (start it with
``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=2`` and
``DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0``, docs/sweep.md).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from lpmsim.sweeps.executors import MAX_RETRIES
from lpmsim.sweeps.rows import RunResult, RunSpec, Simulate, error_line, failed_result, run_one

LOOPBACK = "127.0.0.1"


class DaskUnavailable(RuntimeError):
    """dask.distributed is not installed (``pip install lpmsim[dask]``)."""


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise DaskUnavailable("--executor dask needs dask.distributed: pip install 'lpmsim[dask]'") from None
    return distributed


class DaskExecutor:
    """Runs on ``scheduler`` (an address) or on a ``LocalCluster`` of ``workers`` processes."""

    def __init__(
        self,
        scheduler: str | None = None,
        workers: int | None = None,
        simulate: Simulate | None = None,
        connect_timeout_s: float = 30.0,
    ) -> None:
        dd = _distributed()
        import dask

        self.simulate = simulate
        self._cluster: Any = None
        if scheduler is not None:
            self.address = scheduler
            self._client = dd.Client(scheduler, timeout=connect_timeout_s, set_as_default=False)
        else:
            n = workers or 1
            cfg = {
                "distributed.scheduler.allowed-failures": MAX_RETRIES,
                "distributed.scheduler.worker-saturation": 1.0,
            }
            with dask.config.set(cfg):
                self._cluster = dd.LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    host=LOOPBACK,
                    scheduler_port=0,
                    # its HTTP endpoints on the loopback too, on a free port; no dashboard
                    dashboard_address=f"{LOOPBACK}:0",
                    scheduler_kwargs={"dashboard": False},
                    worker_dashboard_address=None,
                    silence_logs=50,
                )
            self.address = str(self._cluster.scheduler_address)
            self._client = dd.Client(self._cluster, set_as_default=False)
        self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))

    @property
    def description(self) -> str:
        where = "a LocalCluster" if self._cluster is not None else "scheduler"
        return f"dask, {where} at {self.address}, {self.workers} worker(s)"

    def _capacity(self) -> int:
        workers = self._client.scheduler_info().get("workers", {})
        return max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))

    def run(self, specs: Sequence[RunSpec]) -> Iterator[RunResult]:
        """Keeps as many runs in flight as the cluster has threads (re-read as workers come and
        go), so that a worker holds only the run it is executing: when it dies, only that run is
        counted against (tasks queued on a dying worker count as having been on it)."""
        dd = _distributed()
        session = uuid.uuid4().hex[:8]
        queue = deque(specs)
        inflight: dict[Any, RunSpec] = {}
        done = dd.as_completed([], loop=self._client.loop)

        def submit_more() -> None:
            cap = self._capacity()
            while queue and len(inflight) < cap:
                spec = queue.popleft()
                fut = self._client.submit(
                    run_one, spec, self.simulate, key=f"lpmsim-{session}-{spec.key}", pure=False, retries=0
                )
                inflight[fut] = spec
                done.add(fut)

        submit_more()
        try:
            for fut in done:
                spec = inflight.pop(fut)
                if fut.status == "finished":
                    yield fut.result()
                else:
                    exc = fut.exception()
                    if isinstance(exc, dd.KilledWorker):
                        yield failed_result(
                            spec,
                            "WorkerDied: every worker that ran it died, until the scheduler gave up "
                            f"({error_line(exc)})",
                            None,
                            1 + MAX_RETRIES,
                        )
                    else:
                        yield failed_result(spec, error_line(exc))
                fut.release()
                submit_more()
        finally:
            if inflight:
                self._client.cancel(list(inflight))

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.close()

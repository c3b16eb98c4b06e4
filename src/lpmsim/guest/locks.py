"""Kernel spinlocks: one holder, waiters spinning in FIFO order (queued spinlocks are fair).

A waiter executes nothing useful while it spins, in the interrupt state the lock is taken with.
If the holder stalls in the hypervisor on a missing page, every waiter keeps spinning: one slow
page can stop many vCPUs (a convoy).  The lock records how many vCPUs spun at once and for how long.
"""

from __future__ import annotations

from collections import deque

from lpmsim.engine.core import Environment, Event


class Spinlock:
    def __init__(self, env: Environment, name: str, irqsave: bool) -> None:
        self.env = env
        self.name = name
        self.irqsave = irqsave  # holder and waiters soft-masked (raw_spin_lock_irqsave), as rtas_lock
        self.holder: int | None = None
        self.waiters: deque[tuple[int, Event]] = deque()
        self.acquisitions = 0
        self.contended = 0
        self.max_spinners = 0

    def acquire(self, cpu: int) -> Event | None:
        """Take the lock now (returns None) or join the queue (returns the event of the handoff)."""
        self.acquisitions += 1
        if self.holder is None:
            self.holder = cpu
            return None
        if self.holder == cpu:
            raise RuntimeError(f"{self.name}: recursive acquisition on CPU {cpu}")
        ev = self.env.event()
        self.waiters.append((cpu, ev))
        self.contended += 1
        self.max_spinners = max(self.max_spinners, len(self.waiters))
        return ev

    def cancel(self, cpu: int) -> bool:
        """``cpu`` leaves the queue without the lock (its vCPU was taken by an injected bug)."""
        for i, (c, _ev) in enumerate(self.waiters):
            if c == cpu:
                del self.waiters[i]
                return True
        return False

    def release(self, cpu: int) -> None:
        if self.holder != cpu:
            raise RuntimeError(f"{self.name}: released by CPU {cpu}, held by {self.holder}")
        if self.waiters:
            nxt, ev = self.waiters.popleft()
            self.holder = nxt
            ev.succeed()
        else:
            self.holder = None

"""Fault injection for the crash-safety tests (kill -9 at the N-th write).

Inert unless ``LPMSIM_GUARD_KILL_AT`` or ``LPMSIM_GUARD_TRACE`` is set; drmgr clears the environment
before running a hook, so these can never be active at hook time on a real partition.
"""

from __future__ import annotations

import os
import signal

_count = 0


def point(name: str) -> None:
    """Mark a durable step; SIGKILL ourselves if this is the step the test asked for."""
    global _count
    kill_at = os.environ.get("LPMSIM_GUARD_KILL_AT")
    trace = os.environ.get("LPMSIM_GUARD_TRACE")
    if kill_at is None and trace is None:
        return
    _count += 1
    if trace:
        with open(trace, "a", encoding="utf-8") as fh:
            fh.write(f"{_count} {name}\n")
    if kill_at is not None and int(kill_at) == _count:
        os.kill(os.getpid(), signal.SIGKILL)

"""Serialise guard invocations (hook phases, the detached restorer, manual commands) with a lock file.

``LockError`` covers both "another guard holds it" (timeout) and "it cannot be opened at all"
(``ROOT/run/lpmsim-guard`` not a directory, immutable, read-only): the callers that restore carry on
without the lock (restoring is idempotent), the ones that would weaken a setting stop.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lpmsim.guard import GuardError
from lpmsim.guard.files import read_small, why


class LockError(GuardError):
    pass


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = read_small(path, 64).decode("ascii").strip()
        if pid.isdigit():
            return f" (PID {pid})"
    return ""


@contextmanager
def locked(path: Path, timeout_s: float) -> Iterator[None]:
    try:
        if path.parent.exists() and not path.parent.is_dir():
            raise NotADirectoryError(20, "not a directory", str(path.parent))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
    except OSError as exc:
        raise LockError(f"cannot open the lock {path}: {why(exc)}") from None
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"another lpmsim-guard{_holder(path)} holds {path} (waited {timeout_s:g} s)"
                    ) from None
                time.sleep(0.05)
            except OSError as exc:
                raise LockError(f"cannot lock {path}: {why(exc)}") from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock

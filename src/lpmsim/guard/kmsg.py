"""Log every change to syslog and to the kernel log as ``lpmsim-guard: ...`` lines.

Line formats (``lpmsim triage`` recognises any line starting ``lpmsim-guard: ``):

* ``lpmsim-guard: applied policy POLICY (phase pre): NAME OLD -> NEW``
* ``lpmsim-guard: restored NAME CURRENT -> ORIGINAL (phase PHASE)``
* ``lpmsim-guard: ...`` free text for checks, refusals, hand-over to the restorer, discarded journals.
"""

from __future__ import annotations

import contextlib
import os
import stat

from lpmsim.guard.paths import Paths

PREFIX = "lpmsim-guard: "
KERN_NOTICE = 5


class KernelLog:
    def __init__(self, paths: Paths, *, echo: bool = False) -> None:
        self.paths = paths
        self.echo = echo
        self.lines: list[str] = []

    def __call__(self, text: str, *, level: int = KERN_NOTICE) -> None:
        line = PREFIX + text
        self.lines.append(line)
        if self.echo:
            print(line, flush=True)
        self._kmsg(line, level)
        if self.paths.is_real_root:
            self._syslog(line, level)

    def _kmsg(self, line: str, level: int) -> None:
        path = self.paths.kmsg
        with contextlib.suppress(OSError):
            is_dev = stat.S_ISCHR(path.stat().st_mode)
            # /dev/kmsg takes one record per write(); "<N>" sets the level.  Under --root it is a plain file.
            record = f"<{level}>{line}\n" if is_dev else f"{line}\n"
            # O_NONBLOCK: a FIFO or anything else in its place never blocks the hook
            flags = os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | os.O_NOCTTY | (0 if is_dev else os.O_CREAT)
            fd = os.open(path, flags, 0o644)
            try:
                os.write(fd, record.encode("utf-8", "replace"))
            finally:
                os.close(fd)

    @staticmethod
    def _syslog(line: str, level: int) -> None:
        with contextlib.suppress(Exception):
            import syslog

            syslog.openlog("lpmsim-guard", syslog.LOG_PID, syslog.LOG_DAEMON)
            syslog.syslog(level, line)

"""``lpmsim guard``: apply a lockup-detector mitigation around a live partition migration.

Runs as a powerpc-utils drmgr hook (``/etc/drmgr.d/pmig/``) on a production partition in the middle
of a migration, so every module of this package imports only the standard library.  See
``docs/guard.md``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2


class GuardError(Exception):
    """An error reported to the operator as one line; ``code`` is the process exit code."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code

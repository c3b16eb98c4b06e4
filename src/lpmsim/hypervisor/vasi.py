"""VASI stream states, as the guest reads them with H_VASI_STATE.

Values from arch/powerpc/include/asm/hvcall.h (kernel-facts 7.1).
"""

from __future__ import annotations

from enum import IntEnum


class VasiState(IntEnum):
    INVALID = 0
    ENABLED = 1
    ABORTED = 2
    SUSPENDING = 3
    SUSPENDED = 4
    RESUMED = 5
    COMPLETED = 6

"""The kernel's taint flags: ``add_taint()``, ``test_taint()`` and ``print_tainted()``.

Mirrors kernel/panic.c (``taint_flags[]``, ``print_tainted``; include/linux/panic.h for the bit
numbers).  ``print_tainted()`` prints ``Not tainted`` while no flag is set, else ``Tainted: `` and one
character per flag in bit order: the flag's letter when set, else its ``c_false`` (``G`` for
TAINT_PROPRIETARY_MODULE, a space for the others).  The number of positions depends on the kernel:
18 up to v5.19 (P..T), 19 from v6.0 (TAINT_TEST 'N'), and a distribution may add its own after the
upstream ones (SLES 15 SP4: two; ``lpmsim.kernel.versions.DISTROS``).  The banners that print it:
the hung-task report (kernel/hung_task.c ``      %s %s %.*s``: taint, release, version up to its
first space) and ``dump_stack``'s ``CPU: %d PID: %d Comm: %s %s %s`` line.

Flags the model sets: TAINT_SOFTLOCKUP ('L') when the soft-lockup detector reports
(kernel/watchdog.c ``add_taint(TAINT_SOFTLOCKUP, LOCKDEP_STILL_OK)``, after the report and before
``softlockup_panic``).  The taint is per run, on the ``KernelModel``.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class TaintFlag(NamedTuple):
    name: str
    c_true: str
    c_false: str


# kernel/panic.c taint_flags[], in bit order (TAINT_PROPRIETARY_MODULE = 0 ... TAINT_TEST = 18).
TAINT_FLAGS: Final = (
    TaintFlag("TAINT_PROPRIETARY_MODULE", "P", "G"),
    TaintFlag("TAINT_FORCED_MODULE", "F", " "),
    TaintFlag("TAINT_CPU_OUT_OF_SPEC", "S", " "),
    TaintFlag("TAINT_FORCED_RMMOD", "R", " "),
    TaintFlag("TAINT_MACHINE_CHECK", "M", " "),
    TaintFlag("TAINT_BAD_PAGE", "B", " "),
    TaintFlag("TAINT_USER", "U", " "),
    TaintFlag("TAINT_DIE", "D", " "),
    TaintFlag("TAINT_OVERRIDDEN_ACPI_TABLE", "A", " "),
    TaintFlag("TAINT_WARN", "W", " "),
    TaintFlag("TAINT_CRAP", "C", " "),
    TaintFlag("TAINT_FIRMWARE_WORKAROUND", "I", " "),
    TaintFlag("TAINT_OOT_MODULE", "O", " "),
    TaintFlag("TAINT_UNSIGNED_MODULE", "E", " "),
    TaintFlag("TAINT_SOFTLOCKUP", "L", " "),
    TaintFlag("TAINT_LIVEPATCH", "K", " "),
    TaintFlag("TAINT_AUX", "X", " "),
    TaintFlag("TAINT_RANDSTRUCT", "T", " "),
    TaintFlag("TAINT_TEST", "N", " "),
)
TAINT_DIE: Final = 7
TAINT_WARN: Final = 9
TAINT_SOFTLOCKUP: Final = 14


class Taint:
    """``tainted_mask`` of one run, printed with ``positions`` characters (``Kernel.taint_positions``)."""

    def __init__(self, positions: int) -> None:
        self.positions = positions
        self.mask = 0

    def add(self, flag: int) -> None:
        """``add_taint(flag, ...)``."""
        self.mask |= 1 << flag

    def test(self, flag: int) -> bool:
        """``test_taint(flag)``."""
        return bool(self.mask >> flag & 1)

    def print_tainted(self) -> str:
        """``print_tainted()``."""
        if not self.mask:
            return "Not tainted"
        chars = []
        for i in range(self.positions):
            f = TAINT_FLAGS[i] if i < len(TAINT_FLAGS) else None
            if f is None:
                chars.append(" ")  # a distribution's own flag, never set by the model
            else:
                chars.append(f.c_true if self.test(i) else f.c_false)
        return "Tainted: " + "".join(chars)

"""Compiled patterns for every kernel message triage recognises, each with the source it matches.

The patterns are searched in the message text left after :mod:`lpmsim.triage.prefix` (not anchored at
its start, so interleaved console lines still match). The order of :data:`HEADLINES` matters: the
first pattern that matches a line wins, so a ``Kernel panic - not syncing: Watchdog detected hard
LOCKUP on cpu 3`` is a panic, not a hard lockup.

Printk prefixes (``pr_fmt``) are optional in every pattern because they changed over time:
``NMI watchdog: `` (kernel/watchdog.c before v4.13), ``watchdog: `` (v4.13+ and
arch/powerpc/kernel/watchdog.c v4.19+), ``rcu: `` (kernel/rcu, v4.19+), ``mobility: ``
(arch/powerpc/platforms/pseries/mobility.c, v5.11+).
"""

from __future__ import annotations

import re
from typing import Final


def _blank_optional(pattern: str) -> str:
    """Make each literal blank of ``pattern`` optional (``" "`` -> ``" ?"``).

    Text is whitespace-collapsed before matching (doubled blanks and tabs are one blank), and pasted logs
    also lose blanks (``INFO: taskkworker/3:1:123 blocked ...``); every message here is a long run of
    fixed words, so an optional blank does not let unrelated text match. Blanks inside a character class,
    escaped, in a look-behind or already followed by a quantifier are left alone."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if pattern.startswith(("(?<!", "(?<="), i):  # a look-behind must keep its fixed width
            j = pattern.index(")", i) + 1
            out.append(pattern[i:j])
            i = j
            continue
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        nxt = pattern[i + 1] if i + 1 < len(pattern) else ""
        out.append(" ?" if c == " " and not in_class and nxt not in "?*+{" else c)
        i += 1
    return "".join(out)


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(_blank_optional(pattern))


# --- prefilter --------------------------------------------------------------------------------
# Stage 1: one bytes.find() pass per keyword over each block (C speed) finds candidate lines; every
# headline and companion pattern below contains at least one keyword. Stage 2: a line found through a
# generic keyword must also contain one of its confirming literals, which drops lines that merely
# mention the keyword ("NMI watchdog: Enabled", "refined-jiffies", ...) before any decoding.
KEYWORDS: Final[dict[bytes, tuple[bytes, ...]]] = {
    b"LOCKUP": (),
    b"lockup": (b"soft", b"workqueue"),
    b"stall": (b"INFO:", b"hypervisor"),
    b"blocked": (b"more",),
    b"NMI": (
        b"backtrace",
        b"Sending",
        b"BUG",
        b"Watchdog",
        b"factor",
    ),
    b"IPI": (b"backtrace",),
    b"[#": (),
    b"mobility": (b"mobility:", b"Post-mobility"),
    b"lpmsim-guard": (),
    b"crashdump": (),
    b"switchover": (),
    b"Linux version": (),
    b"heartbeat": (b"TB",),
    b"jiffies": (b" jiffies",),
    b" GP": (b"ticks this GP", b"GPs behind"),
    # heads of messages, for a first line that a wrap cut short (lpmsim.triage.stitch)
    b"INFO:": (),
    b"BUG:": (),
    b"atchdog": (b"CPU", b"BUG", b"Watchdog", b"Set", b"detected"),  # "watchdog:" and "Watchdog"
    b"Kernel panic": (),
    b"rcu:": (b"INFO",),
}
# A keyword at the very end of a line (``... kernel: [ 5.1] rcu:``, blanks and a colon after it
# allowed) also makes the line a candidate: there a wrap cut the message short after its first word.

# --- hard lockups -----------------------------------------------------------------------------
# arch/powerpc/kernel/watchdog.c v4.13-v4.18: pr_emerg("Watchdog CPU:%d detected Hard LOCKUP other CPUS:%*pbl\n")
HL_PPC_OLD_OTHER: Final = _rx(
    r"Watchdog CPU:(?P<by>\d{1,12}) detected Hard LOCKUP other CPUS:\s*(?P<cpus>[\d,\-]*)"
)
# same file v4.13-v4.18: pr_emerg("Watchdog CPU:%d Hard LOCKUP\n") (self-detected or answering the NMI IPI)
HL_PPC_OLD_SELF_OR_IPI: Final = _rx(r"Watchdog CPU:(?P<cpu>\d{1,12}) Hard LOCKUP")
# same file v4.19+: pr_emerg("CPU %d detected hard LOCKUP on other CPUs %*pbl\n")
HL_PPC_OTHER: Final = _rx(r"CPU (?P<by>\d{1,12}) detected hard LOCKUP on other CPUs\s*(?P<cpus>[\d,\-]*)")
# same file v4.19+: pr_emerg("CPU %d self-detected hard LOCKUP @ %pS\n")
HL_PPC_SELF: Final = _rx(r"CPU (?P<cpu>\d{1,12}) self-detected hard LOCKUP @ (?P<pc>\S+)")
# same file v4.19+, wd_lockup_ipi(): pr_emerg("CPU %d Hard LOCKUP\n")
HL_PPC_IPI: Final = _rx(r"(?<![:\w])CPU (?P<cpu>\d{1,12}) Hard LOCKUP\b")
# kernel/watchdog_hld.c (perf NMI, "NMI watchdog: " before v4.13, "watchdog: " after):
#   "Watchdog detected hard LOCKUP on cpu %d"; kernel/watchdog.c v6.5+ (buddy/common code):
#   "CPU%u: Watchdog detected hard LOCKUP on cpu %u"; vendor BookE kernels: "BookE Watchdog detected ...".
HL_GENERIC: Final = _rx(
    r"(?P<pre>NMI watchdog: |watchdog: |BookE )?(?:CPU(?P<by>\d{1,12}): )?Watchdog detected hard LOCKUP on cpu (?P<cpu>\d{1,12})"
)
# companion (not an event): "CPU %d TB:%lld, last [SMP ]heartbeat TB:%lld (%lldms ago)"
HL_HEARTBEAT: Final = _rx(
    r"CPU:? ?(?P<cpu>\d{1,12}) TB:(?P<tb>\d+), last (?P<smp>SMP )?heartbeat TB:(?P<last>\d+) \((?P<ms>\d{1,12})ms ago\)"
)
# companion (not an event): "CPU %d became unstuck TB:%lld" / "Watchdog CPU:%d became unstuck"
HL_UNSTUCK: Final = _rx(r"CPU:? ?(?P<cpu>\d{1,12}) became unstuck")

# --- soft lockups -----------------------------------------------------------------------------
# kernel/watchdog.c: pr_emerg("BUG: soft lockup - CPU#%d stuck for %us! [%s:%d]\n") (since 2.6.2x);
# prefix "NMI watchdog: " v4.0-v4.12, "watchdog: " v4.13+. Very old (2.6.1x): "BUG: soft lockup detected on CPU#%d!"
SOFTLOCKUP: Final = _rx(
    r"(?P<pre>NMI watchdog: |watchdog: )?BUG: soft lockup - CPU#(?P<cpu>\d{1,12}) stuck for (?P<dur>\d{1,12})s!"
    r"(?: ?\[(?P<comm>.*):(?P<pid>\d{1,12})\])?"
)
SOFTLOCKUP_OLD: Final = _rx(r"BUG: soft lockup detected on CPU#(?P<cpu>\d{1,12})!")

# --- RCU CPU stalls ---------------------------------------------------------------------------
# kernel/rcu/tree_stall.h (tree.c before v5.1): pr_err("INFO: %s self-detected stall on CPU")
RCU_SELF: Final = _rx(r"INFO: (?P<flavor>rcu_\w+?|rcu) self-detected stall on CPU(?P<rest>.*)")
# pr_err("INFO: %s detected stalls on CPUs/tasks:")
RCU_OTHER: Final = _rx(r"INFO: (?P<flavor>rcu_\w+?|rcu) detected stalls on CPUs/tasks:(?P<rest>.*)")
# kernel/rcu/tree_exp.h: pr_err("INFO: %s detected expedited stalls on CPUs/tasks: {")
RCU_EXP: Final = _rx(r"INFO: (?P<flavor>rcu_\w+?|rcu) detected expedited stalls on CPUs/tasks:(?P<rest>.*)")
# 2.6.3x-3.x: "INFO: rcu_sched_state detected stall on CPU 1 (t=6000 jiffies)" (self-detected)
RCU_OLD_SELF: Final = _rx(
    r"INFO: (?P<flavor>rcu_\w+?)(?:_state)? detected stall on CPU (?P<cpu>\d{1,12})(?P<rest>.*)"
)
# companions: per-CPU lines "\t%d-%c%c%c%c: (%lu ticks this GP) ..." (3.x: "\t%d: (%lu GPs behind) ...")
RCU_CPU_LINE: Final = _rx(
    r"(?:^|\s)(?P<cpu>\d{1,12})(?:-[^\s:]{2,6})?: \((?:\d+ ticks this GP|\d+ GPs behind|\d+ ticks|last_accelerate)"
)
# trailers: v6.x pr_err("\t(t=%lu jiffies g=%ld q=%lu ncpus=%d)") / pr_err("\t(detected by %d, t=%ld
# jiffies, g=%ld, q=%lu ncpus=%d)") carry the "rcu: " prefix; older kernels print them with pr_cont and
# without ncpus=, after a per-CPU line that ended with a newline: a record of its own with no prefix
# ("[ts] \t(t=2100 jiffies g=10005 q=0)"). RCU_T_JIFFIES / RCU_DETECTED_BY read both as companions.
RCU_T_JIFFIES: Final = _rx(r"\bt=(?P<j>\d{1,12}) jiffies")
RCU_DETECTED_BY: Final = _rx(r"detected by (?P<by>\d{1,12})")
RCU_INLINE_CPUS: Final = _rx(r"\{(?P<list>[^}]*)\}")
RCU_INLINE_CPU: Final = _rx(r"(?<![\w-])(\d+)(?:-[^\s}]*)?")
RCU_EXP_JIFFIES: Final = _rx(r"\}\s*(?P<j>\d{1,12}) jiffies")

# --- hypervisor stalls (the annotate policy, docs/policies.md; not an upstream message) ----------
# "watchdog: CPU %d: memory access stalled %u s in the hypervisor" (hard and soft lockup detectors),
# "rcu: CPU %d: ..." (RCU stall detector), "workqueue: CPU %d: ..." (workqueue watchdog): a detector
# that would have reported the CPU found it not dispatched by the hypervisor for N s of the window.
HV_STALL: Final = _rx(
    r"(?:(?P<pre>watchdog|rcu|workqueue): )?CPU (?P<cpu>\d{1,12}): memory access stalled (?P<dur>\d{1,12}) s"
    r" in the hypervisor"
)

# --- workqueue lockups ------------------------------------------------------------------------
# kernel/workqueue.c wq_watchdog_timer_fn(): "BUG: workqueue lockup - pool" " cpus=%*pbl" [" node=%d"]
#   " flags=0x%x nice=%d" " stuck for %us!"
WQ_LOCKUP: Final = _rx(r"BUG: workqueue lockup - pool(?P<pool>.*?) stuck for (?P<dur>\d{1,12})s!")
WQ_CPUS: Final = _rx(r"cpus=(?P<cpus>[\d,\-]+)")

# --- hung tasks -------------------------------------------------------------------------------
# kernel/hung_task.c check_hung_task(): "INFO: task %s:%d blocked for more than %ld seconds."
#   (v6.x variant "... blocked in I/O wait for more than %ld seconds.")
HUNG_TASK: Final = _rx(
    r"INFO: task (?P<comm>.+?):(?P<pid>\d{1,12}) blocked (?P<io>in I/O wait )?for more than (?P<dur>\d{1,12}) seconds"
)

# --- NMI backtraces ---------------------------------------------------------------------------
# lib/nmi_backtrace.c: "NMI backtrace for cpu %d" (+ " skipped: idling at %pS")
NMI_BACKTRACE: Final = _rx(r"NMI backtrace for cpu (?P<cpu>\d{1,12})(?P<idle> skipped: idling)?")
# arch/powerpc/kernel/stacktrace.c raise_backtrace_ipi(): "CPU %d didn't respond to backtrace IPI, inspecting paca."
NMI_NO_RESPONSE: Final = _rx(r"CPU (?P<cpu>\d{1,12}) didn.t respond to backtrace IPI")

# --- panics, oopses, system reset -------------------------------------------------------------
# kernel/panic.c panic(): pr_emerg("Kernel panic - not syncing: %s\n"); the trailer
#   "---[ end Kernel panic - not syncing: %s ]---" is not an event.
PANIC: Final = _rx(r"(?<!end )Kernel panic - not syncing:? ?(?P<msg>.*)")
# powerpc __die(): "Oops: %s, sig: %ld [#%d]"; x86 __die_header(): "%s: %04lx [#%d]" (v6.x "Oops: %s: %04lx [#%d]");
# arm64 __die(): "Internal error: %s: %016x [#%d]"
OOPS: Final = _rx(
    r"(?P<arm>Internal error: )?(?P<oops>Oops: )?(?P<what>[^\[\]]{1,200}?)"
    r"(?:, sig: (?P<sig>\d{1,12})|: (?P<code>[0-9a-f]{4,16})) \[#(?P<n>\d{1,12})\]"
)
# arch/powerpc/kernel/traps.c system_reset_exception(): die("Unrecoverable System Reset", ...) and
#   die("Unrecoverable nested System Reset", ...); older kernels: nmi_panic(regs, "Unrecoverable System Reset")
USR_WHAT: Final = _rx(r"Unrecoverable (?:nested )?System Reset")

# --- crash-path markers (not events) ----------------------------------------------------------
# kdump start: "Starting crashdump kernel..." (arm64/x86 machine_kexec), powerpc "kexec: Starting switchover sequence."
# init/main.c start_kernel(): pr_notice("%s", linux_banner) = "Linux version %s ..." once per boot
BOOT: Final = re.compile(r"^Linux version \d")
KDUMP: Final = _rx(r"Starting crashdump kernel|kexec: Starting switchover sequence")

# --- migration (LPM) --------------------------------------------------------------------------
# arch/powerpc/platforms/pseries/mobility.c pr_fmt "mobility: " (v5.11+)
MOBILITY: Final = _rx(r"(?:^|\s|\])mobility: (?P<msg>.*)")
# pre-v5.11 mobility.c: "Post-mobility activate-fw failed: %d", "Post-mobility device tree update failed: %d"
POST_MOBILITY: Final = _rx(r"Post-mobility (?P<msg>.*)")
# arch/powerpc/kernel/watchdog.c v6.0+: pr_info("Set the NMI watchdog timeout factor to %llu%%\n")
WD_FACTOR: Final = _rx(r"Set the NMI watchdog timeout factor to (?P<pct>\d{1,12})%")
# our drmgr hook (lpmsim guard) writes "lpmsim-guard: <message>" into the kernel log
GUARD: Final = _rx(r"^lpmsim-guard: (?P<msg>.*)")
GUARD_PHASE: Final = _rx(r"\(phase (?P<phase>check|pre|post|undo|abort|cancel)\)")
# CPUs printed in mobility messages: "calling ibm,suspend-me on CPU %i", "CPU %u waking all threads",
#   "H_JOIN error %ld on CPU %i", "premature return from H_JOIN on CPU %i", "H_PROD of CPU %u (hwid %d) ..."
MOBILITY_CPU: Final = _rx(r"\bCPU (?P<cpu>\d{1,12})\b")

# --- stack evidence for verdicts --------------------------------------------------------------
LOCK_FUNCS: Final = _rx(
    r"\b(?:_raw_spin_lock\w*|_raw_read_lock\w*|_raw_write_lock\w*|\w*queued_spin_lock_slowpath|do_raw_spin_lock"
    r"|arch_spin_lock|__arch_spin_trylock|queued_read_lock\w*|queued_write_lock\w*|osq_lock|__mutex_lock\w*"
    r"|mutex_lock\w*|rwsem_down_\w+|__rwsem_\w+|spin_lock_irq\w*|__spin_yield|splpar_spin_yield|lock_acquire)\b"
)
MEMORY_FUNCS: Final = _rx(
    r"\b(?:memcpy\w*|memset\w*|memmove\w*|copy_page\w*|clear_page\w*|__copy_tofrom_user\w*|copy_\w*user\w*"
    r"|raw_copy_\w+|__memcpy\w*|__memset\w*|do_page_fault|hash_page\w*|__do_page_fault|handle_mm_fault"
    r"|__handle_mm_fault|do_anonymous_page|filemap_fault|__get_user\w*|__put_user\w*|strncpy_from_user"
    r"|memcmp|strlen|strcmp|page_address|kmem_cache_alloc\w*|__kmalloc\w*)\b"
)
RTAS_FUNCS: Final = _rx(
    r"\b(?:enter_rtas|rtas_call\w*|rtas_ibm_suspend_me|rtas_activate_firmware|do_enter_rtas|mobility_rtas_call"
    r"|pseries_devicetree_update|update_dt_node|post_mobility_fixup|pseries_migrate_partition|do_join"
    r"|dlpar_configure_connector|rtas_busy_delay)\b"
)

"""Kernel versions: the one table of version-dependent behaviours, and the distributions' kernels.

Each behaviour the model follows names the commit that brought it, the first mainline release that
has it and the stable releases it was backported to where that matters (``BEHAVIOURS``).  A kernel is
a real version (``"5.14"``, ``"6.0"``, ``"6.6.3"``, ``"5.14.21-150400.24.46-default"``) plus the commits
backported to it; a distribution's kernel (``DISTROS``) is exactly that.  ``Kernel`` in
``lpmsim.kernel.config`` derives its behaviour properties from ``has()``; nothing else reads versions.

Sources (kernel-facts.md, kernel-audit.md, and the mails/short logs found for each commit):

* powerpc watchdog rework, Nicholas Piggin, Nov 2021 (applied to powerpc/next for v5.17, in the powerpc
  5.17 pull): 5dad4ba68a24 "Fix missed watchdog reset due to memory ordering race", 858c93c31504
  "tighten non-atomic read-modify-write access", 76521c4b0291 "Avoid holding wd_smp_lock over printk
  and smp_send_nmi_ipi" (``wd_try_report``, stuck CPUs marked before the IPIs, IPIs outside the lock),
  1f01bf90765f "read TB close to where it is used", 3d030e301856 "Fix wd_smp_last_reset_tb reporting".
* RCU stall trailer: 80d530b47da4 "rcu: Print number of online CPUs in RCU CPU stall-warning messages"
  (Paul McKenney, Apr 2022: ``ncpus=``, still ``pr_cont``; in Linus's master during the v5.19 merge
  window, the kernel.org push of 24 May 2022); 3ab955de929a "rcu: Align the output of RCU CPU stall
  warning messages" (Zhen Lei, posted as "rcu: Align the output of RCU stall", Nov 2022; in the "RCU
  changes for v6.3" pull, so v6.3, not v6.2: ``pr_cont`` -> ``pr_err``, the trailer gets the ``rcu: ``
  prefix; its sibling be42f00b73a0 is cited by mainline Fixes: tags).
* ``rcu_cpu_stall_reset()``: a80be428fbc1 (v5.15), b96e7a5fa0ba "rcu/tree: Defer setting of jiffies
  during stall reset" (v6.7; 6.6.3: patch 331/530 of the 6.6.3 review; also in a 6.5 review and
  other stable branches' pushes, their releases UNVERIFIED).
* RTAS with MSR[RI]=1: b6b1c3ce06ca (powerpc/next May 2022, v5.19; stable releases UNVERIFIED).
* LPM: 882c0d1704cf (wait for VASI Completed), 7c56a8733d0a + f5e74e836097 + 118b1366930c (the
  factor), all applied to powerpc/next for v6.0.  5.19.4 has the factor trio only (patches of the
  5.19.4-rc1 review of 23 Aug 2022; its short log lists three Laurent Dufour commits): there the
  factor is reset right after ``post_mobility_fixup()``, with no completion wait.
* ``workqueue.panic_on_stall``: 073107b39e55 (Sangmoon Kim, Aug 2024; tj/wq "for-6.12", in the
  "workqueue: Changes for v6.12" pull): v6.12.
* System reset with MSR[RI]=0: 265d6e588d87 "powerpc/traps: Make unrecoverable NMIs die instead of
  panic" (powerpc/next 20 May 2020: v5.8; stable 4.14.200, 4.19.149, 5.4.69 from the reviews of
  29 Sep 2020).
* ``TAINT_TEST`` ('N' in the taint string): 2852ca7fba9f "panic: Taint kernel if tests are run"
  (v6.0).
* ``multi_cpu_stop()``'s RCU quiescent state: 366237e7b083 "stop_machine: Provide RCU quiescent state
  in multi_cpu_stop()" (tip core/rcu, Oct 2019: v5.5; later ``Fixes:`` tags cite it) calls
  ``rcu_momentary_dyntick_idle()`` on every pass of the loop; c861cac950fb "stop_machine: Fix
  rcu_momentary_eqs() call in multi_cpu_stop()" (posted by Paul McKenney 12 Dec 2024, no ``Fixes:``
  or ``Cc: stable`` tag; new in the linux-next push of 29 Jan 2025 together with the v6.14-rc1
  merges, so v6.14) moves it under ``curstate > MULTI_STOP_PREPARE``.  No stable backport found.
* Doorbell IPIs to SMT siblings under XIVE: 5b06d1679f2f "powerpc/pseries: Use doorbells even if
  XIVE is available" (applied to powerpc/next 30 Jul 2020 with 107c55005fbd: v5.9).  107c55005fbd
  "powerpc/pseries: Add KVM guest doorbell restrictions" keeps XIVE for KVM guests only (the model
  is a PowerVM partition: it does not apply).
* RCU's irq_work to holdouts (``rdp->rcu_iw``, the fourth flag of the per-CPU stall line): "rcu: Make
  RCU CPU stall warnings check for irq-disabled CPUs" (Paul McKenney's stall.2017.10.09a branch,
  parent of 83b6ca1fede7, pulled into tip core/rcu on 24 Oct 2017, 72bc286b81d2: v4.15; its own id
  UNVERIFIED).  ``resched_cpu()`` at the same FQS pass is older (every modelled version).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple


class KVersion(NamedTuple):
    """A kernel version: (major, minor, sublevel)."""

    major: int
    minor: int
    sub: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}" + (f".{self.sub}" if self.sub else "")


# arch/powerpc/kernel/watchdog.c, the SMP hard-lockup detector the model follows, came in v4.13.
OLDEST = KVersion(4, 13)


class VersionError(ValueError):
    """A version or commit the table does not know; the message is one line."""


_VERSION = re.compile(r"v?([0-9]{1,3})\.([0-9]{1,3})(?:\.([0-9]{1,4}))?([-+~_.][0-9A-Za-z._+~-]*)?")


def parse(text: str) -> KVersion:
    """A kernel version or ``uname -r`` release -> its (major, minor, sublevel).

    ``"6.6.3"`` -> 6.6.3, ``"5.14.21-150400.24.46-default"`` -> 5.14.21, ``"6.12"`` -> 6.12.0."""
    m = _VERSION.fullmatch(text.strip())
    if m is None:
        raise VersionError(
            f"{text[:60]!r} is not a kernel version (e.g. 5.14, 6.0, 6.6.3, 5.14.21-150400.24.46-default)"
        )
    return KVersion(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


@dataclass(frozen=True)
class Behaviour:
    """One version-dependent behaviour: where it came from."""

    name: str
    commit: str | None  # the mainline commit (12 hex digits); None: id UNVERIFIED, not backportable
    title: str
    mainline: KVersion
    stable: tuple[KVersion, ...] = ()  # first stable release of each branch that has it
    note: str = ""


BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour(
        "wd_rework",
        "76521c4b0291",
        "powerpc/watchdog: Avoid holding wd_smp_lock over printk and smp_send_nmi_ipi",
        KVersion(5, 17),
        note="Nicholas Piggin's Nov 2021 series (5dad4ba68a24, 858c93c31504, 76521c4b0291, 1f01bf90765f, "
        "3d030e301856): wd_try_report, stuck CPUs marked before the IPIs, IPIs sent outside wd_smp_lock.",
    ),
    Behaviour(
        "rcu_reset_timeout",
        "a80be428fbc1",
        "rcu: Do not disable GP stall detection in rcu_cpu_stall_reset()",
        KVersion(5, 15),
        note="rcu_cpu_stall_reset() sets jiffies + rcu_jiffies_till_stall_check() (before: ULONG_MAX/2).",
    ),
    Behaviour(
        "rcu_reset_third_fqs",
        "b96e7a5fa0ba",
        "rcu/tree: Defer setting of jiffies during stall reset",
        KVersion(6, 7),
        (KVersion(6, 6, 3),),
        note="Fixes: a80be428fbc1; nr_fqs_jiffies_stall = 3 (the reset deferred to the third FQS "
        "pass).  Other stable branches took it too (releases UNVERIFIED).",
    ),
    Behaviour(
        "rcu_trailer_ncpus",
        "80d530b47da4",
        "rcu: Print number of online CPUs in RCU CPU stall-warning messages",
        KVersion(5, 19),
        note="ncpus= in the (t=...)/(detected by ...) trailer.",
    ),
    Behaviour(
        "rcu_trailer_pr_err",
        "3ab955de929a",
        "rcu: Align the output of RCU CPU stall warning messages",
        KVersion(6, 3),
        note="the trailer is printed with pr_err (rcu: prefix), before with pr_cont; merged for v6.3 "
        "(the RCU pull for v6.3), not v6.2.",
    ),
    Behaviour(
        "rtas_ri1",
        "b6b1c3ce06ca",
        "powerpc/rtas: Keep MSR[RI] set when calling RTAS",
        KVersion(5, 19),
        note="stable backports UNVERIFIED.",
    ),
    Behaviour(
        "vasi_completion_wait",
        "882c0d1704cf",
        "powerpc/mobility: wait for memory transfer to complete",
        KVersion(6, 0),
        note="not in 5.19.4, whose LPM backport has the factor only (no 5.19.y backport found).",
    ),
    Behaviour(
        "lpm_factor",
        "118b1366930c",
        "pseries/mobility: set NMI watchdog factor during an LPM",
        KVersion(6, 0),
        (KVersion(5, 19, 4),),
        note="with f5e74e836097 (powerpc/watchdog: introduce a NMI watchdog's factor) and 7c56a8733d0a; "
        "5.19.4: patch 345/365 of the 5.19.4-rc1 review (23 Aug 2022), without 882c0d1704cf.",
    ),
    Behaviour(
        "wq_panic_on_stall",
        "073107b39e55",
        "workqueue: add cmdline parameter workqueue.panic_on_stall",
        KVersion(6, 12),
        note="Sangmoon Kim, Aug 2024; in the workqueue pull for v6.12.",
    ),
    Behaviour(
        "sreset_ri0_die",
        "265d6e588d87",
        "powerpc/traps: Make unrecoverable NMIs die instead of panic",
        KVersion(5, 8),
        (KVersion(4, 14, 200), KVersion(4, 19, 149), KVersion(5, 4, 69)),
        note='before: nmi_panic(regs, "Unrecoverable System Reset"); from then die() returns for trap '
        "0x100 (oops_end) and the handler's return path fails later.  Nicholas Piggin's series "
        "(lore 20200508043408.886394-16), powerpc/next 20 May 2020; stable reviews of 29 Sep 2020.",
    ),
    Behaviour(
        "rcu_stall_irq_work",
        None,
        "rcu: Make RCU CPU stall warnings check for irq-disabled CPUs",
        KVersion(4, 15),
        note="irq_work_queue_on(&rdp->rcu_iw, cpu) once per GP and the fourth flag of the per-CPU "
        "stall line (digit / ! / .); before, three flags.  Commit id UNVERIFIED (parent of "
        "83b6ca1fede7; pulled into tip core/rcu 24 Oct 2017 for v4.15).  resched_cpu() IPIs the "
        "holdout at the same pass in every modelled version.",
    ),
    Behaviour(
        "stop_machine_rcu_qs",
        "366237e7b083",
        "stop_machine: Provide RCU quiescent state in multi_cpu_stop()",
        KVersion(5, 5),
        note="rcu_momentary_dyntick_idle() on every pass of multi_cpu_stop()'s loop, MULTI_STOP_PREPARE "
        "included (renamed rcu_momentary_eqs() in v6.12).",
    ),
    Behaviour(
        "stop_machine_qs_irqs_off",
        "c861cac950fb",
        "stop_machine: Fix rcu_momentary_eqs() call in multi_cpu_stop()",
        KVersion(6, 14),
        note="moves the call under curstate > MULTI_STOP_PREPARE (interrupts off).  No Fixes: or "
        "Cc: stable tag; no stable backport found.",
    ),
    Behaviour(
        "sibling_doorbells",
        "5b06d1679f2f",
        "powerpc/pseries: Use doorbells even if XIVE is available",
        KVersion(5, 9),
        note="msgsndp doorbells to SMT siblings of the sender's core; 107c55005fbd (KVM guest doorbell "
        "restrictions, same series) limits it for KVM guests only, not PowerVM.",
    ),
    Behaviour(
        "taint_test",
        "2852ca7fba9f",
        "panic: Taint kernel if tests are run",
        KVersion(6, 0),
        note="TAINT_TEST ('N'), one more position in the taint string.",
    ),
)
BY_NAME: dict[str, Behaviour] = {b.name: b for b in BEHAVIOURS}
# Commits a backport list may name: each behaviour's, plus the companions that come with it.
COMMITS: dict[str, str] = {b.commit: b.name for b in BEHAVIOURS if b.commit is not None}
COMMITS.update(
    {
        "5dad4ba68a24": "wd_rework",
        "858c93c31504": "wd_rework",
        "1f01bf90765f": "wd_rework",
        "3d030e301856": "wd_rework",
        "f5e74e836097": "lpm_factor",
        "7c56a8733d0a": "lpm_factor",
    }
)


def commit_behaviour(commit: str) -> str:
    """The behaviour a backported commit id (at least 7 hex digits) brings; VersionError if unknown."""
    c = commit.strip().lower()
    if re.fullmatch(r"[0-9a-f]{7,40}", c):
        hits = {
            name for full, name in COMMITS.items() if full.startswith(c[:12]) and c.startswith(full[: len(c)])
        }
        if len(hits) == 1:
            return hits.pop()
    known = ", ".join(sorted(COMMITS))
    raise VersionError(f"unknown commit {commit[:45]!r}: the version table knows {known}")


def has(version: KVersion, backports: tuple[str, ...], name: str) -> bool:
    """The kernel ``version`` with ``backports`` has behaviour ``name``."""
    b = BY_NAME[name]
    if version >= b.mainline:
        return True
    if any(s[:2] == version[:2] and version >= s for s in b.stable):
        return True
    return any(commit_behaviour(c) == name for c in backports)


@dataclass(frozen=True)
class Distro:
    """A distribution's kernel: a version plus its backports (and the text it prints)."""

    name: str
    title: str
    version: str
    release: str  # uname -r
    release_prefix: str  # a uname -r starting with this is this distribution's kernel
    backports: tuple[str, ...]
    sysctl_preset: str  # Kernel.preset: the distribution's sysctl defaults
    taint_extra: int  # taint-string positions the distribution adds after the upstream ones
    note: str


DISTROS: dict[str, Distro] = {
    "sles15-sp4": Distro(
        "sles15-sp4",
        "SUSE Linux Enterprise Server 15 SP4 (GA, June 2022)",
        "5.14.21",
        "5.14.21-150400.22-default",
        "5.14.21-150400.",
        ("76521c4b0291",),
        "sles",
        2,
        "5.14.21 with the powerpc watchdog rework backported (SUSE's tree has wd_try_report next to the "
        "5.14-era printk_safe_flush, openSUSE/kernel arch/powerpc/kernel/watchdog.c).  RTAS still entered "
        "with MSR[RI]=0: the SLES 15 SP4 crash in the commit text of b6b1c3ce06ca.  No LPM factor and no "
        "completion wait (v6.0, after SP4 GA).  ASSUMPTIONS: rcu_cpu_stall_reset() as upstream 5.14 "
        "(a80be428fbc1 not backported); two SUSE taint positions after the upstream ones (the "
        "b6b1c3ce06ca log prints 'Tainted: G            E  X    ', 20 positions); later SP4 maintenance "
        "kernels may carry more fixes.",
    ),
}

# The behaviour names of the first modelled versions, kept as aliases.  Each maps to the kernel whose
# behaviour it stood for where that was right: ``pre-v6.0`` was the 2022 distribution kernel of the
# seed discussion (watchdog rework, RTAS RI=0, no factor, rest-of-GP RCU reset) = SLES 15 SP4;
# ``v6.0`` = 6.0 (its RCU reset was wrong: 6.0 has a80be428fbc1's timeout reset); ``v6.6`` stood for
# the deferred (third FQS) reset = 6.6.3.
ALIASES: dict[str, tuple[str, str | None]] = {
    "pre-v6.0": ("5.14.21", "sles15-sp4"),
    "v6.0": ("6.0", None),
    "v6.6": ("6.6.3", None),
}
DEPRECATION = (
    "kernel.version names pre-v6.0, v6.0 and v6.6 are deprecated aliases (pre-v6.0 = "
    "distro sles15-sp4, 5.14.21; v6.0 = 6.0; v6.6 = 6.6.3): give a real version"
)


def distro_of_release(text: str) -> str | None:
    """The distribution whose kernel a ``uname -r`` release is (None: not one of ``DISTROS``)."""
    for d in DISTROS.values():
        if text.strip().startswith(d.release_prefix):
            return d.name
    return None


def release_of(text: str, distro: Distro | None) -> str:
    """``uname -r`` of the kernel ``text`` (a version or a release): a release is kept as given; a
    distribution's own version gets its release; else ``major.minor.sublevel``."""
    text = text.strip()
    version = parse(text)
    m = _VERSION.fullmatch(text)
    if m is not None and m.group(4):
        return text
    if distro is not None and parse(distro.version) == version:
        return distro.release
    return f"{version.major}.{version.minor}.{version.sub}"


def table_rows() -> list[tuple[str, str, str, str, str]]:
    """(behaviour, commit, mainline, stable, note) for the docs."""
    return [
        (
            b.name,
            b.commit or "UNVERIFIED",
            str(b.mainline),
            ", ".join(str(s) for s in b.stable) or "-",
            b.note,
        )
        for b in BEHAVIOURS
    ]

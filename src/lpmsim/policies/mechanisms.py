"""The mitigation policies as the kernel model runs them.

Each mechanism acts at the points of the pseries migration flow (``lpmsim.kernel.mobility``) where
its kernel change (or ``lpmsim guard``, the drmgr hook) would act.  ``build_policy`` turns a
parsed policy string into one ``Policy`` the flow calls; mechanisms not listed are off.  What each
one mirrors, and the kernel change the new ones would take, is in docs/policies.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

from lpmsim.engine.core import Event
from lpmsim.guard.policy import GEN_NEW, GEN_OLD, INHIBIT_ALL
from lpmsim.guard.policy import Policy as GuardPolicy
from lpmsim.guard.policy import plan as guard_plan
from lpmsim.hypervisor.migration import Migration
from lpmsim.kernel.mobility import DRMGR_PID, FlowHooks
from lpmsim.kernel.model import KernelModel
from lpmsim.policies.spec import PolicySpec

LatencyProbe = Callable[[], float]
"""The longest demand-fault stall the partition has seen so far (s): what its DTL shows."""


class Mechanism(FlowHooks):
    """One mechanism of a policy: every hook does nothing unless the mechanism needs it."""

    needs_completion = False  # the flow must wait for VASI Completed (pre-v6.0 included)

    def __init__(self, m: KernelModel, mig: Migration) -> None:
        self.m = m
        self.mig = mig

    def factor_pct(self) -> int | None:
        """The LPM factor to set at SUSPENDING; None = this mechanism does not decide it."""
        return None


class KernelDefault(Mechanism):
    """``kernel``: what the version does by itself (the factor read from the sysctl at SUSPENDING)."""

    def factor_pct(self) -> int:
        return self.m.kernel_lpm_factor()


class NoMitigation(Mechanism):
    """``none``: the hard-lockup timeout stays ``watchdog_thresh`` (Linux before v6.0)."""

    def factor_pct(self) -> int:
        return 0


class NmiFactor(Mechanism):
    """``nmi-factor:P``: 118b1366930c as merged — P % added from SUSPENDING until COMPLETED."""

    needs_completion = True

    def __init__(self, m: KernelModel, mig: Migration, pct: int) -> None:
        super().__init__(m, mig)
        self.pct = pct

    def factor_pct(self) -> int:
        return self.pct


class DisableNmi(Mechanism):
    """``disable-nmi``: Laurent Dufour's v1 — ``watchdog_nmi_stop()`` just before stop_machine,
    ``watchdog_nmi_start()`` once the transfer completes (with his patch 1, the completion wait)."""

    needs_completion = True

    def factor_pct(self) -> int:
        return 0

    def before_stop_machine(self, t: float) -> None:
        self.m.hardlockup_stop(t)

    def at_completed(self, t: float) -> None:
        self.m.hardlockup_start(t)


class InhibitAll(Mechanism):
    """``inhibit-all``: every lockup detector off through its own switch from just before the suspend
    until COMPLETED, then each switch restored (the writes' kernel side effects: kernel.sysctl)."""

    needs_completion = True

    def __init__(self, m: KernelModel, mig: Migration) -> None:
        super().__init__(m, mig)
        self.saved: list[tuple[str, int]] = []

    def before_stop_machine(self, t: float) -> None:
        for name, value in INHIBIT_ALL.items():  # the switches lpmsim guard writes, in its order
            self.saved.append((name, self.m.sys.read(name)))
            self.m.write_sysctl(name, value, t)

    def at_completed(self, t: float) -> None:
        for name, value in reversed(self.saved):
            self.m.write_sysctl(name, value, t)
        self.saved = []


class FreezeUser(Mechanism):
    """``freeze-user:dt-update|completed``: ``freeze_processes()`` before the suspend, ``thaw_processes()``
    after ``post_mobility_fixup()`` (the device-tree update) or at COMPLETED.  Log lines as
    kernel/power/process.c prints them in v6.1-v6.14: ``Freezing %s`` and ``Freezing %s completed
    (elapsed %d.%03d seconds)`` from ``try_to_freeze_tasks()``, ``Restarting tasks ... done.`` from
    ``thaw_processes()``.  ASSUMPTION: the freeze takes 1 ms (every user task reaches the
    refrigerator at its next return to user space)."""

    def __init__(self, m: KernelModel, mig: Migration, until: str) -> None:
        super().__init__(m, mig)
        self.until = until
        self.needs_completion = until == "completed"
        self.frozen = False

    def _emit(self, t: float, text: str) -> None:
        self.m.log.emit(t, text, f"T{DRMGR_PID}")

    def before_stop_machine(self, t: float) -> None:
        self._emit(t, "Freezing user space processes")
        self._emit(t, "Freezing user space processes completed (elapsed 0.001 seconds)")
        self.m.hooks.freeze_user()
        self.frozen = True

    def _thaw(self, t: float) -> None:
        if self.frozen:
            self.frozen = False
            self.m.hooks.thaw_user()
            self._emit(t, "Restarting tasks ... done.")

    def after_fixup(self, t: float) -> None:
        if self.until == "dt-update":
            self._thaw(t)

    def at_completed(self, t: float) -> None:
        self._thaw(t)


class DetectorJudge(Mechanism):
    """``steal-aware`` / ``annotate``: the detectors consult the dispatch trace log (kernel.dtl)."""

    def __init__(self, m: KernelModel, mig: Migration, mode: str) -> None:
        super().__init__(m, mig)
        m.enable_dtl(mode)


class AdaptiveFactor(Mechanism):
    """``adaptive-factor``: from resume until COMPLETED, every ``period_s`` the hard-lockup timeout is
    re-derived from the longest demand-fault stall seen so far: room for ``faults`` such stalls in
    a row on top of ``watchdog_thresh``, at most ``max_pct``.  The new timeouts apply without
    restarting the detector (a restart would re-seed every heartbeat and hide a real lockup)."""

    needs_completion = True

    def __init__(self, m: KernelModel, mig: Migration, spec: PolicySpec, probe: LatencyProbe) -> None:
        super().__init__(m, mig)
        self.faults = float(spec.option("faults"))
        self.max_pct = int(spec.option("max_pct"))
        self.period = float(spec.option("period_s"))
        self.probe = probe
        self.running = False

    def factor_pct(self) -> int:
        return 0

    def pct_for(self, stall_s: float) -> int:
        thresh = self.m.sys.watchdog_thresh
        if thresh <= 0:
            return 0
        return min(self.max_pct, math.ceil(100.0 * self.faults * stall_s / thresh))

    def after_resume(self, t: float) -> None:
        self.running = True
        self.m.env.process(self._adapt(), name="adaptive-factor")

    def at_completed(self, t: float) -> None:
        self.running = False

    def _adapt(self) -> Generator[Event, Any, None]:
        m = self.m
        while self.running and not m.dead:
            pct = self.pct_for(self.probe())
            if pct != m.hard.pct:
                m.set_timeout_pct(m.env.now, pct)
            yield m.env.timeout(self.period)


class Guard(Mechanism):
    """``guard:<policy>``: ``lpmsim guard`` as a drmgr hook.  Its ``pre`` phase writes the policy's
    sysctls (the same plan ``lpmsim.guard.policy.plan`` makes on a real partition) when drmgr starts
    the migration, before the kernel reads ``nmi_wd_lpm_factor``; ``post`` runs when the migration
    call returns: on v6.0+ after COMPLETED, and restores at once; on older kernels right after the
    device-tree update, and a restorer waits (``completion=hold``: ``hold_s``; ``steal``: until the
    partition's stolen time is back to its pre-migration level — the transfer complete — for
    ``settle_s``), at most ``max_s``, then restores.  Lines as the real guard writes to /dev/kmsg."""

    def __init__(self, m: KernelModel, mig: Migration, spec: PolicySpec) -> None:
        super().__init__(m, mig)
        part = spec.part("guard")
        assert part is not None and part.arg is not None
        inner = part.arg.partition(":")[0]
        self.policy = GuardPolicy(inner, part.factor if inner == "nmi-factor" else None)
        self.generation = GEN_NEW if m.cfg.has_lpm_factor else GEN_OLD
        self.mode = str(spec.option("completion"))
        self.hold_s = float(spec.option("hold_s"))
        self.settle_s = float(spec.option("settle_s"))
        self.max_s = float(spec.option("max_s"))
        self.saved: list[tuple[str, int]] = []
        self.restored = False
        self.completed_s: float | None = None
        self.post_s: float | None = None
        self.times: dict[str, float | None] = {"pre_s": None, "post_s": None, "restored_s": None}
        mig.completed.add_callback(self._on_completed)

    def _log(self, t: float, text: str) -> None:
        self.m.log.emit(t, f"lpmsim-guard: {text}", f"T{DRMGR_PID}")

    def factor_pct(self) -> int:
        return self.m.kernel_lpm_factor()  # the kernel's own, reading what pre may have written

    def at_request(self, t: float) -> None:
        m = self.m
        plan = guard_plan(self.policy, self.generation, m.sys.read)
        self.times["pre_s"] = t
        for name, target in plan.targets.items():
            old = m.sys.read(name)
            if old == target:
                continue
            self.saved.append((name, old))
            m.write_sysctl(name, target, t)
            self._log(t, f"applied policy {self.policy} (phase pre): {name} {old} -> {target}")

    def _restore(self, phase: str) -> None:
        if self.restored or self.m.dead:
            return
        self.restored = True
        t = self.m.env.now
        self.times["restored_s"] = t
        for name, original in reversed(self.saved):
            cur = self.m.sys.read(name)
            self.m.write_sysctl(name, original, t)
            self._log(t, f"restored {name} {cur} -> {original} (phase {phase})")

    def _on_completed(self, _e: Event) -> None:
        self.completed_s = self.m.env.now
        self._schedule_restorer()

    def at_return(self, t: float) -> None:
        self.post_s = t
        self.times["post_s"] = t
        if not self.saved:
            return
        if self.generation == GEN_NEW:
            self._restore("post")
            return
        self._log(t, f"post: restorer waits for completion ({self.mode}, at most {self.max_s:g} s)")
        self.m.env.call_at(t + self.max_s, lambda: self._restore("restorer"))
        self._schedule_restorer()

    def _schedule_restorer(self) -> None:
        post = self.post_s
        if post is None or self.restored or self.generation == GEN_NEW or not self.saved:
            return
        if self.mode == "hold":
            self.m.env.call_at(post + min(self.hold_s, self.max_s), lambda: self._restore("restorer"))
        elif self.completed_s is not None:
            at = max(post, self.completed_s) + self.settle_s
            self.m.env.call_at(min(at, post + self.max_s), lambda: self._restore("restorer"))


class Policy:
    """The mechanisms of one policy string, called by the mobility flow in the order listed."""

    def __init__(self, m: KernelModel, mechanisms: list[Mechanism]) -> None:
        self.m = m
        self.mechanisms = mechanisms

    def factor_pct(self) -> int:
        for mech in self.mechanisms:
            pct = mech.factor_pct()
            if pct is not None:
                return pct
        return 0

    def waits_for_completion(self) -> bool:
        return self.m.cfg.waits_for_completion or any(x.needs_completion for x in self.mechanisms)

    def at_request(self, t: float) -> None:
        for x in self.mechanisms:
            x.at_request(t)

    def before_stop_machine(self, t: float) -> None:
        for x in self.mechanisms:
            x.before_stop_machine(t)

    def after_resume(self, t: float) -> None:
        for x in self.mechanisms:
            x.after_resume(t)

    def after_fixup(self, t: float) -> None:
        for x in self.mechanisms:
            x.after_fixup(t)

    def at_completed(self, t: float) -> None:
        for x in self.mechanisms:
            x.at_completed(t)

    def at_return(self, t: float) -> None:
        for x in self.mechanisms:
            x.at_return(t)


def build_policy(spec: PolicySpec, m: KernelModel, mig: Migration, probe: LatencyProbe) -> Policy:
    """The ``Policy`` of ``spec`` for the kernel model ``m`` and the migration ``mig``."""
    out: list[Mechanism] = []
    for part in spec.parts:
        name = part.name
        if name == "kernel":
            out.append(KernelDefault(m, mig))
        elif name == "none":
            out.append(NoMitigation(m, mig))
        elif name == "nmi-factor":
            out.append(NmiFactor(m, mig, part.factor))
        elif name == "disable-nmi":
            out.append(DisableNmi(m, mig))
        elif name == "inhibit-all":
            out.append(InhibitAll(m, mig))
        elif name == "freeze-user":
            out.append(FreezeUser(m, mig, part.arg or "completed"))
        elif name in ("steal-aware", "annotate"):
            out.append(DetectorJudge(m, mig, name))
        elif name == "adaptive-factor":
            out.append(AdaptiveFactor(m, mig, spec, probe))
        elif name == "guard":
            out.append(Guard(m, mig, spec))
        else:  # pragma: no cover - the registry and this table are kept together
            raise KeyError(name)
    if not any(type(x).factor_pct is not Mechanism.factor_pct for x in out):
        out.insert(0, NoMitigation(m, mig))  # timeout slot not filled: nothing listed raises it
    return Policy(m, out)

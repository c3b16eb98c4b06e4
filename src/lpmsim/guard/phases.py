"""The four drmgr phases (check, undocheck, pre, post) plus restore and status.

Invariants: originals are durable in the journal before the first setting is written; ``pre`` is
all-or-nothing; any invocation that finds a window left open by a crashed guard in the same boot restores
it, a journal from an earlier boot is discarded; nothing stays weakened beyond ``window_max_s`` (the
detached watchdog started at ``pre``) or ``completion.max_s`` after ``post``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TextIO

from lpmsim.guard import EXIT_FAIL, EXIT_OK, GuardError, journal
from lpmsim.guard.config import Completion, GuardConfig
from lpmsim.guard.journal import ACTIVE, Entry, Journal
from lpmsim.guard.kernel import KernelInfo, boot_identity, detect
from lpmsim.guard.kmsg import KernelLog
from lpmsim.guard.lock import locked
from lpmsim.guard.paths import Paths
from lpmsim.guard.policy import GEN_NEW, plan
from lpmsim.guard.restorer import read_lparcfg, read_steal
from lpmsim.guard.settings import SettingError, SettingsIO

PHASES = ("check", "undocheck", "pre", "post")

# spawn(kind, token): start the detached restorer ("window" watchdog at pre, "completion" at post)
Spawner = Callable[[str, str], None]


class Guard:
    def __init__(
        self,
        paths: Paths,
        config: GuardConfig,
        *,
        dry_run: bool = False,
        io: SettingsIO | None = None,
        log: KernelLog | None = None,
        spawn: Spawner | None = None,
        wall: Callable[[], float] = time.time,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.paths = paths
        self.config = config
        self.dry_run = dry_run
        self.io = io or SettingsIO(paths)
        self.log = log or KernelLog(paths)
        self.spawn = spawn or (lambda kind, token: None)
        self.wall = wall
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    # -- helpers -----------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def complain(self, text: str) -> None:
        print(f"lpmsim-guard: {text}", file=self.err, flush=True)

    def _load(self, phase: str) -> Journal | None:
        try:
            j = journal.load(self.paths.journal)
        except ValueError as exc:
            self.log(f"{exc} (phase {phase})", level=3)
            self.complain(str(exc))
            return None
        if j is not None and j.boot_id != boot_identity(self.paths):
            self.log(
                f"discarded journal from an earlier boot {j.boot_id} (phase {phase}): sysctls were reset"
            )
            if not self.dry_run:
                journal.discard(self.paths.journal)
            return None
        return j

    def _save(self, j: Journal) -> None:
        if not self.dry_run:
            journal.save(self.paths.journal, j)

    def _kernel(self) -> KernelInfo:
        return detect(self.paths, self.config.kernel_generation)

    def _restore(self, j: Journal, phase: str) -> int:
        """Put every original value back (reverse order); keep the journal if any write fails."""
        failures = []
        for e in reversed(j.entries):
            try:
                cur = self.io.read(e.name)
            except SettingError as exc:
                failures.append(str(exc))
                continue
            if cur == e.original:
                continue
            if self.dry_run:
                self.say(f"would restore {e.name} {cur} -> {e.original}")
                continue
            try:
                self.io.write(e.name, e.original)
            except SettingError as exc:
                failures.append(str(exc))
                continue
            self.log(f"restored {e.name} {cur} -> {e.original} (phase {phase})")
        if failures:
            for f in failures:
                self.log(f"restore failed (phase {phase}): {f}", level=3)
                self.complain(f"restore failed: {f}")
            return EXIT_FAIL
        if not self.dry_run:
            journal.discard(self.paths.journal)
        return EXIT_OK

    def _recover(self, j: Journal | None, phase: str) -> Journal | None:
        """A window left open (crashed guard, missing post, new migration) is closed before anything else."""
        if j is None or j.state not in ACTIVE:
            return j
        self.log(f"closing the window left open since state {j.state} of policy {j.policy} (phase {phase})")
        if self._restore(j, phase) != EXIT_OK:
            raise GuardError("could not restore the settings of a previous window; see the messages above")
        return None

    # -- phases ------------------------------------------------------------------------------------
    def run(self, phase: str) -> int:
        if phase not in PHASES:
            raise GuardError(f"unknown phase {phase!r} (expected {', '.join(PHASES)})")
        with locked(self.paths.lock, self.config.lock_timeout_s):
            run = {"check": self.check, "undocheck": self.undocheck, "pre": self.pre, "post": self.post}
            return run[phase]()

    def _validate(self, kernel: KernelInfo) -> tuple[dict[str, int], list[str]]:
        """(targets, problems) of the configured policy on this machine."""
        problems: list[str] = []
        if self.config.require_pseries and not kernel.pseries:
            problems.append("not a pseries (PowerVM) partition: /proc/cpuinfo has no 'platform : pSeries'")
        p = plan(self.config.policy, kernel.generation, self.io.read_int, self.config.overrides)
        problems += [self.io.problem(n) or f"{n}: cannot read" for n in p.missing]
        for note in p.notes:
            self.say(f"note: {note}")
        targets: dict[str, int] = {}
        for name, value in p.targets.items():
            why = self.io.problem(name)
            if why is None:
                targets[name] = value
            elif self.config.skip_missing and not self.io.exists(name):
                self.say(f"note: skipping {why} (skip_missing = true)")
            else:
                problems.append(why)
        return targets, problems

    def _refusal(self) -> str | None:
        r = self.config.refuse_if
        if not r.panic_set:
            return None
        hot = [f"{n} = {v}" for n in r.panic_settings if (v := self.io.read_int(n))]
        return r.message.format(settings=", ".join(hot)) if hot else None

    def check(self) -> int:
        j = self._recover(self._load("check"), "check")
        kernel = self._kernel()
        targets, problems = self._validate(kernel)
        if problems:
            for p in problems:
                self.complain(f"check failed: {p}")
            self.log(f"check failed, migration vetoed: {'; '.join(problems)}", level=3)
            return EXIT_FAIL
        refusal = self._refusal()
        if refusal:
            print(refusal, file=self.err, flush=True)
            self.log(f"refused migration (phase check): {refusal}", level=4)
            return EXIT_FAIL
        j = Journal(
            boot_id=boot_identity(self.paths),
            policy=str(self.config.policy),
            generation=kernel.generation,
            created_at=self.wall(),
            entries=[Entry(n, self.io.read(n), str(v)) for n, v in targets.items()],
            history=[f"check {self.wall():.3f}"],
        )
        for e in j.entries:
            self.say(
                f"{'would set' if self.dry_run else 'will set'} {e.name} {e.original} -> {e.target} at pre"
            )
        self._save(j)
        self.log(
            f"check ok: policy {j.policy}, kernel {kernel.release} ({kernel.generation}), "
            f"{len(j.entries)} setting(s) recorded"
        )
        return EXIT_OK

    def undocheck(self) -> int:
        j = self._recover(self._load("undocheck"), "undocheck")
        if j is not None and not self.dry_run:
            journal.discard(self.paths.journal)
            self.log("check undone: journal discarded (phase undocheck)")
        return EXIT_OK

    def pre(self) -> int:
        j = self._recover(self._load("pre"), "pre")
        kernel = self._kernel()
        targets, problems = self._validate(kernel)
        if problems:  # pre cannot veto: apply nothing, say why
            for p in problems:
                self.complain(f"pre: nothing applied: {p}")
            self.log(f"nothing applied (phase pre): {'; '.join(problems)}", level=3)
            if not self.dry_run:
                journal.discard(self.paths.journal)
            return EXIT_FAIL
        now = self.wall()
        c = self.config.completion
        j = Journal(
            boot_id=boot_identity(self.paths),
            policy=str(self.config.policy),
            generation=kernel.generation,
            state="applying",
            created_at=j.created_at if j is not None else now,
            window_deadline=now + self.config.window_max_s,
            completion=asdict(c),
            entries=[Entry(n, self.io.read(n), str(v)) for n, v in targets.items()],
            history=[*(j.history if j is not None else []), f"pre {now:.3f}"],
        )
        j.entries = [e for e in j.entries if e.original != e.target]
        if kernel.generation != GEN_NEW and c.mode == "steal":
            try:
                s = read_steal(self.paths)
                j.steal_baseline = {"steal": s.steal, "total": s.total, "fraction": s.fraction}
            except (OSError, ValueError) as exc:
                self.complain(f"pre: cannot read stolen time ({exc}); post will wait completion.max_s")
            lpar = read_lparcfg(self.paths)
            for key in ("shared_processor_mode", "partition_active_processors"):
                if key in lpar and j.steal_baseline is not None:
                    j.steal_baseline[key] = float(lpar[key])
        if self.dry_run:
            for e in j.entries:
                self.say(f"would apply {e.name} {e.original} -> {e.target}")
            return EXIT_OK
        if not j.entries:
            self.log(f"policy {j.policy} (phase pre): nothing to change")
            journal.discard(self.paths.journal)
            return EXIT_OK
        journal.save(self.paths.journal, j)  # originals durable before the first write
        self.spawn("window", j.token)  # the hard maximum is armed before anything is weakened
        done: list[Entry] = []
        for e in j.entries:
            try:
                self.io.write(e.name, e.target)
            except SettingError as exc:
                self.complain(f"pre: {exc}; rolling back")
                self.log(f"apply failed (phase pre): {exc}; rolling back {len(done)} setting(s)", level=3)
                j.entries = [*done, e]  # the failed write may have landed partly: restore it too
                self._restore(j, "pre")  # discards the journal on success, keeps it for a retry otherwise
                return EXIT_FAIL
            done.append(e)
        j.state, j.applied_at = "applied", self.wall()
        journal.save(self.paths.journal, j)
        for e in j.entries:
            self.log(f"applied policy {j.policy} (phase pre): {e.name} {e.original} -> {e.target}")
        return EXIT_OK

    def post(self) -> int:
        j = self._load("post")
        if j is None or j.state not in ACTIVE:
            if j is not None and not self.dry_run:
                journal.discard(self.paths.journal)
            self.log("post: nothing applied, nothing to restore (phase post)")
            return EXIT_OK
        if j.generation == GEN_NEW or j.state == "applying":
            return self._restore(j, "post")
        # the completion settings recorded at pre win over the configuration read now
        c = Completion(**j.completion) if j.completion else self.config.completion
        if c.mode == "hold" and c.hold_s == 0:
            return self._restore(j, "post")
        if self.dry_run:
            self.say(f"would hand over to the restorer ({c.mode}, max {c.max_s:g} s)")
            return EXIT_OK
        j.state, j.waiting_since = "waiting", self.wall()
        j.completion = asdict(c)
        j.history.append(f"post {j.waiting_since:.3f}")
        journal.save(self.paths.journal, j)
        self.log(
            f"pre-v6.0 kernel: restoring after the memory transfer ({c.mode}"
            + (f" {c.hold_s:g} s" if c.mode == "hold" else f", settle {c.settle_s:g} s")
            + f", at most {c.max_s:g} s) (phase post)"
        )
        self.spawn("completion", j.token)
        return EXIT_OK

    # -- commands ----------------------------------------------------------------------------------
    def restore(self, phase: str = "restore") -> int:
        with locked(self.paths.lock, self.config.lock_timeout_s):
            j = self._load(phase)
            if j is None:
                self.say("nothing to restore")
                return EXIT_OK
            if j.state not in ACTIVE:
                if not self.dry_run:
                    journal.discard(self.paths.journal)
                self.say("nothing applied (journal from check discarded)")
                return EXIT_OK
            return self._restore(j, phase)

    def close_window(self, token: str, phase: str, reason: str) -> int:
        """Restore if the journal still is window ``token`` (the detached restorer's last step)."""
        with locked(self.paths.lock, self.config.lock_timeout_s):
            j = self._load(phase)
            if j is None or j.token != token or j.state not in ACTIVE:
                return EXIT_OK
            self.log(f"{reason} (phase {phase})")
            return self._restore(j, phase)

    def status(self, as_json: bool = False) -> int:
        try:
            j = journal.load(self.paths.journal)
        except ValueError as exc:
            self.complain(str(exc))
            return EXIT_FAIL
        kernel = self._kernel()
        boot = boot_identity(self.paths)
        info: dict[str, object] = {
            "kernel": kernel.release,
            "generation": kernel.generation,
            "pseries": kernel.pseries,
            "policy_configured": str(self.config.policy),
            "config": self.config.source,
            "hook_installed": self.paths.hook_link.is_symlink() or self.paths.hook_link.exists(),
            "journal": None,
        }
        if j is not None:
            now = self.wall()
            info["journal"] = {
                "state": j.state,
                "policy": j.policy,
                "same_boot": j.boot_id == boot,
                "since": j.applied_at or j.created_at,
                "seconds": round(now - (j.applied_at or j.created_at), 1),
                "window_expired": j.window_deadline is not None and now > j.window_deadline,
                "entries": [{**asdict(e), "current": self.io.read_int(e.name)} for e in j.entries],
            }
        if as_json:
            self.say(json.dumps(info, indent=1))
            return EXIT_OK
        self.say(
            f"kernel {info['kernel']} ({info['generation']}), pseries: {'yes' if kernel.pseries else 'no'}, "
            f"hook installed: {'yes' if info['hook_installed'] else 'no'}"
        )
        self.say(f"configured policy: {info['policy_configured']} ({info['config']})")
        if j is None:
            self.say("nothing applied")
            return EXIT_OK
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.applied_at or j.created_at))
        where = "" if j.boot_id == boot else " (from an earlier boot: stale, will be discarded)"
        self.say(f"journal: {j.state}, policy {j.policy}, since {since}{where}")
        if j.state == "waiting":
            self.say(f"waiting for the memory transfer ({j.completion.get('mode')}) since post")
        if j.window_deadline is not None and self.wall() > j.window_deadline and j.state in ACTIVE:
            self.say("WINDOW EXPIRED: run `lpmsim guard restore`")
        for e in j.entries:
            self.say(f"  {e.name}: original {e.original}, target {e.target}, now {self.io.read_int(e.name)}")
        return EXIT_OK

"""The four drmgr phases (check, undocheck, pre, post) plus restore and status.

Invariants: originals are durable in both journal copies before the first setting is written (if the
journal cannot be written, nothing is weakened); ``pre`` is all-or-nothing; any invocation that finds a
window left open by a crashed guard in the same boot restores it; a journal from an earlier boot is
discarded (an unreadable boot id is never taken for a reboot); nothing stays weakened beyond
``window_max_s`` (the detached watchdog started at ``pre``) or ``completion.max_s`` after ``post``.

Restoring needs nothing but the journal: not the configuration, not the lock (``post``, ``restore`` and
the restorers that cannot take the lock in time restore without it: writing an original value back is
idempotent), not the kernel release, not /proc/stat.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from typing import TextIO

from lpmsim.guard import EXIT_FAIL, EXIT_OK, GuardError
from lpmsim.guard.config import Completion, GuardConfig
from lpmsim.guard.files import why
from lpmsim.guard.journal import ACTIVE, Entry, Journal, Store
from lpmsim.guard.kernel import KernelInfo, boot_identity, detect, same_boot
from lpmsim.guard.kmsg import KernelLog
from lpmsim.guard.lock import LockError, locked
from lpmsim.guard.paths import Paths
from lpmsim.guard.policy import GEN_NEW, plan
from lpmsim.guard.restorer import read_lparcfg, read_steal
from lpmsim.guard.settings import SettingError, SettingsIO

PHASES = ("check", "undocheck", "pre", "post")
UNKNOWN_BOOT = "unknown"

# spawn(kind, token): start the detached restorer ("window" watchdog at pre, "completion" at post)
Spawner = Callable[[str, str], None]


def _one_line(text: str) -> str:
    return " ".join(text.split())


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
        self.store = Store.of(paths)

    # -- helpers -----------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def complain(self, text: str) -> None:
        print(f"lpmsim-guard: {_one_line(text)}", file=self.err, flush=True)

    def _problem(self, text: str, phase: str) -> None:
        """One line on stderr and one in the kernel log (level err)."""
        self.complain(text)
        self.log(f"{_one_line(text)} (phase {phase})", level=3)

    @contextmanager
    def _hold(self, phase: str, *, must: bool) -> Iterator[bool]:
        """The lock; yields whether it is held.  ``must``: LockError propagates, else carry on without."""
        stack = ExitStack()
        try:
            stack.enter_context(locked(self.paths.lock, self.config.lock_timeout_s))
            held = True
        except LockError as exc:
            if must:
                raise
            self._problem(f"{exc}: restoring through the journal without the lock", phase)
            held = False
        with stack:
            yield held

    def _load(self, phase: str, *, held: bool) -> tuple[Journal | None, bool]:
        """(journal of this boot or None, lost): ``lost`` when a journal exists but no copy is readable."""
        loaded = self.store.load()
        for p in loaded.problems:
            self._problem(p, phase)
        if held and not self.dry_run:
            for done in self.store.set_aside(loaded.bad):
                self.log(f"{done} (phase {phase})", level=3)
            self.store.sweep()
        j = loaded.journal
        if j is not None and not same_boot(j.boot_id, boot_identity(self.paths)):
            self.log(
                f"discarded journal from an earlier boot {j.boot_id} (phase {phase}): sysctls were reset"
            )
            if not self.dry_run:
                self.store.discard()
            return None, False
        return j, loaded.lost

    def _save(self, j: Journal) -> None:
        if not self.dry_run:
            self.store.save(j)

    def _kernel(self) -> KernelInfo:
        return detect(self.paths, self.config.kernel_generation)

    def _restore(self, j: Journal, phase: str) -> int:
        """Put every original value back (reverse order); keep the journal if any write fails.

        A setting whose current value cannot be read is written anyway: only an exact match is skipped.
        """
        failures = []
        for e in reversed(j.entries):
            try:
                cur = self.io.read(e.name)
            except SettingError:
                cur = None
            if cur == e.original:
                continue
            shown = "unreadable" if cur is None else (" ".join(cur.split())[:40] or "empty")
            if self.dry_run:
                self.say(f"would restore {e.name} {shown} -> {e.original}")
                continue
            try:
                self.io.write(e.name, e.original)
            except SettingError as exc:
                failures.append(str(exc))
                continue
            self.log(f"restored {e.name} {shown} -> {e.original} (phase {phase})")
        if failures:
            for f in failures:
                self.log(f"restore failed (phase {phase}): {f}", level=3)
                self.complain(f"restore failed: {f}")
            return EXIT_FAIL
        if not self.dry_run:
            self.store.discard()
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
        weakening = phase in ("check", "pre")  # may lead to weakened settings: never without the lock
        try:
            with self._hold(phase, must=weakening) as held:
                if phase == "check":
                    return self.check()
                if phase == "pre":
                    return self.pre()
                rc = self.undocheck(held) if phase == "undocheck" else self.post(held)
                return rc if held else EXIT_FAIL  # restored, but without the lock: say something was wrong
        except LockError as exc:
            what = "check failed, migration vetoed" if phase == "check" else "pre: nothing applied"
            self.log(f"{what}: {exc} (phase {phase})", level=3)
            raise GuardError(f"{what}: {exc}") from None

    def _validate(self, kernel: KernelInfo) -> tuple[dict[str, int], list[str]]:
        """(targets, problems) of the configured policy on this machine."""
        problems: list[str] = []
        if self.config.require_pseries and not kernel.pseries:
            problems.append("not a pseries (PowerVM) partition: /proc/cpuinfo has no 'platform : pSeries'")
        if kernel.version is None and self.config.kernel_generation == "auto":
            self.say(
                f"note: kernel release unreadable ({self.paths.osrelease}): generation {kernel.generation} "
                f"from the {'presence' if kernel.has_factor else 'absence'} of kernel.nmi_wd_lpm_factor"
            )
        p = plan(self.config.policy, kernel.generation, self.io.read_int, self.config.overrides)
        problems += [self.io.problem(n) or f"{n}: cannot read" for n in p.missing]
        for note in p.notes:
            self.say(f"note: {note}")
        targets: dict[str, int] = {}
        for name, value in p.targets.items():
            problem = self.io.problem(name)
            if problem is None:
                targets[name] = value
            elif self.config.skip_missing and not self.io.exists(name):
                self.say(f"note: skipping {problem} (skip_missing = true)")
            else:
                problems.append(problem)
        return targets, problems

    def _entries(self, targets: dict[str, int]) -> tuple[list[Entry], list[str]]:
        entries, problems = [], []
        for name, value in targets.items():
            try:
                entries.append(Entry(name, self.io.read(name), str(value)))
            except SettingError as exc:
                problems.append(str(exc))
        return entries, problems

    def _refusal(self) -> str | None:
        r = self.config.refuse_if
        if not r.panic_set:
            return None
        hot = [f"{n} = {v}" for n in r.panic_settings if (v := self.io.read_int(n))]
        return r.message.format(settings=", ".join(hot)) if hot else None

    def _boot(self) -> str:
        return boot_identity(self.paths) or UNKNOWN_BOOT

    def check(self) -> int:
        j, lost = self._load("check", held=True)
        if lost:
            # The unreadable journal may have held the originals of a window still open: the current
            # values may be weakened ones, and recording them now would make them the "originals".
            # Veto this migration once (the copies are now set aside as *.corrupt, so the next check
            # goes on) and let the administrator look at the settings first.
            text = (
                "a journal exists but no copy is readable (set aside as *.corrupt): the current settings "
                "may be those of a window left open; check them, then retry the migration"
            )
            self.complain(f"check failed: {text}")
            self.log(f"check failed, migration vetoed: {text}", level=3)
            return EXIT_FAIL
        self._recover(j, "check")
        kernel = self._kernel()
        targets, problems = self._validate(kernel)
        entries, unreadable = self._entries(targets) if not problems else ([], [])
        problems += unreadable
        if problems:
            for p in problems:
                self.complain(f"check failed: {p}")
            self.log(f"check failed, migration vetoed: {_one_line('; '.join(problems))}", level=3)
            return EXIT_FAIL
        refusal = self._refusal()
        if refusal:
            print(_one_line(refusal), file=self.err, flush=True)
            self.log(f"refused migration (phase check): {_one_line(refusal)}", level=4)
            return EXIT_FAIL
        j = Journal(
            boot_id=self._boot(),
            policy=str(self.config.policy),
            generation=kernel.generation,
            created_at=self.wall(),
            entries=entries,
            history=[f"check {self.wall():.3f}"],
        )
        for e in j.entries:
            self.say(
                f"{'would set' if self.dry_run else 'will set'} {e.name} {e.original} -> {e.target} at pre"
            )
        try:
            self._save(j)
        except OSError as exc:  # pre could not journal its originals either: say so now, where it can veto
            text = f"cannot write the journal: {exc.filename or self.paths.journal}: {why(exc)}"
            self.complain(f"check failed: {text}")
            self.log(f"check failed, migration vetoed: {text}", level=3)
            return EXIT_FAIL
        self.log(
            f"check ok: policy {j.policy}, kernel {kernel.release} ({kernel.generation}), "
            f"{len(j.entries)} setting(s) recorded"
        )
        return EXIT_OK

    def undocheck(self, held: bool = True) -> int:
        j, lost = self._load("undocheck", held=held)
        if j is not None and j.state in ACTIVE:
            self.log(
                f"closing the window left open since state {j.state} of policy {j.policy} (phase undocheck)"
            )
            return self._restore(j, "undocheck")
        if j is not None and not self.dry_run:
            self.store.discard()
            self.log("check undone: journal discarded (phase undocheck)")
        return EXIT_FAIL if lost else EXIT_OK

    def _steal_baseline(self, j: Journal) -> None:
        try:
            s = read_steal(self.paths)
        except (OSError, ValueError) as exc:
            self.complain(f"pre: cannot read stolen time ({exc}); post will wait completion.max_s")
            return
        j.steal_baseline = {"steal": float(s.steal), "total": float(s.total), "fraction": s.fraction}
        lpar = read_lparcfg(self.paths)
        for key in ("shared_processor_mode", "partition_active_processors"):
            value = lpar.get(key, "")
            if value.isascii() and value.isdigit() and len(value) <= 12:  # for the record only
                j.steal_baseline[key] = float(value)

    def _nothing_applied(self, text: str) -> int:
        self.complain(f"pre: nothing applied: {text}")
        self.log(f"nothing applied (phase pre): {_one_line(text)}", level=3)
        if not self.dry_run:
            self.store.discard()
        return EXIT_FAIL

    def pre(self) -> int:
        prev, _ = self._load("pre", held=True)
        prev = self._recover(prev, "pre")
        kernel = self._kernel()
        targets, problems = self._validate(kernel)
        entries, unreadable = self._entries(targets) if not problems else ([], [])
        problems += unreadable
        if problems:  # pre cannot veto: apply nothing, say why
            for p in problems[:-1]:
                self.complain(f"pre: nothing applied: {p}")
            return self._nothing_applied(problems[-1])
        now = self.wall()
        c = self.config.completion
        j = Journal(
            boot_id=self._boot(),
            policy=str(self.config.policy),
            generation=kernel.generation,
            state="applying",
            created_at=prev.created_at if prev is not None else now,
            window_deadline=now + self.config.window_max_s,
            completion=asdict(c),
            entries=[e for e in entries if e.original.split()[:1] != [e.target]],
            history=[*(prev.history if prev is not None else []), f"pre {now:.3f}"][-20:],
        )
        if kernel.generation != GEN_NEW and c.mode == "steal":
            self._steal_baseline(j)
        if self.dry_run:
            for e in j.entries:
                self.say(f"would apply {e.name} {e.original} -> {e.target}")
            return EXIT_OK
        if not j.entries:
            self.log(f"policy {j.policy} (phase pre): nothing to change")
            self.store.discard()
            return EXIT_OK
        try:
            self.store.save(j)  # originals durable (both copies) before the first write
        except OSError as exc:
            return self._nothing_applied(
                f"cannot write the journal ({exc.filename or self.paths.journal}: {why(exc)}), so the "
                "original values could not be made durable"
            )
        try:
            self.spawn("window", j.token)  # the hard maximum is armed before anything is weakened
        except Exception as exc:  # any failure to arm the watchdog: weaken nothing
            return self._nothing_applied(f"cannot start the window watchdog: {type(exc).__name__}: {exc}")
        done: list[Entry] = []
        current: Entry | None = None
        try:
            for e in j.entries:
                current = e
                self.io.write(e.name, e.target)
                done.append(e)
            current = None
            j.state, j.applied_at = "applied", self.wall()
            self.store.save(j)
        except Exception as exc:  # whatever went wrong, weakened settings are rolled back
            text = str(exc) if isinstance(exc, SettingError) else f"{type(exc).__name__}: {exc}"
            self.complain(f"pre: {text}; rolling back")
            self.log(
                f"apply failed (phase pre): {_one_line(text)}; rolling back {len(done)} setting(s)", level=3
            )
            # the failed write may have landed partly: restore it too
            j.entries = [*done, *([current] if current is not None else [])]
            self._restore(j, "pre")  # discards the journal on success, keeps it for a retry otherwise
            return EXIT_FAIL
        for e in j.entries:
            self.log(f"applied policy {j.policy} (phase pre): {e.name} {e.original} -> {e.target}")
        return EXIT_OK

    def post(self, held: bool = True) -> int:
        j, lost = self._load("post", held=held)
        if lost:
            self.complain("post: cannot restore: no copy of the journal can be read (see above)")
            return EXIT_FAIL
        if j is None or j.state not in ACTIVE:
            if j is not None and not self.dry_run:
                self.store.discard()
            self.log("post: nothing applied, nothing to restore (phase post)")
            return EXIT_OK
        if not held or j.generation == GEN_NEW or j.state == "applying":
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
        try:
            self.store.save(j)
            self.spawn("completion", j.token)
        except Exception as exc:  # no hand-over possible: restore now rather than later
            self._problem(
                f"cannot hand over to the completion restorer ({type(exc).__name__}: {exc}): restoring now",
                "post",
            )
            return self._restore(j, "post")
        self.log(
            f"pre-v6.0 kernel: restoring after the memory transfer ({c.mode}"
            + (f" {c.hold_s:g} s" if c.mode == "hold" else f", settle {c.settle_s:g} s")
            + f", at most {c.max_s:g} s) (phase post)"
        )
        return EXIT_OK

    # -- commands ----------------------------------------------------------------------------------
    def restore(self, phase: str = "restore") -> int:
        with self._hold(phase, must=False) as held:
            j, lost = self._load(phase, held=held)
            if j is None:
                if lost:
                    self.complain(f"{phase}: cannot restore: no copy of the journal can be read (see above)")
                    return EXIT_FAIL
                self.say("nothing to restore")
                return EXIT_OK
            if j.state not in ACTIVE:
                if not self.dry_run:
                    self.store.discard()
                self.say("nothing applied (journal from check discarded)")
                return EXIT_OK if held else EXIT_FAIL
            rc = self._restore(j, phase)
            return rc if held else EXIT_FAIL

    def emergency_restore(self) -> int:
        """After an unexpected error: restore an open window of this boot from the journal, no lock."""
        j, lost = self._load("emergency", held=False)
        if j is None or j.state not in ACTIVE:
            return EXIT_FAIL if lost else EXIT_OK
        return self._restore(j, "emergency")

    def close_window(self, token: str, phase: str, reason: str) -> int:
        """Restore if the journal still is window ``token`` (the detached restorer's last step)."""
        with self._hold(phase, must=False) as held:
            j, lost = self._load(phase, held=held)
            if j is None or j.token != token or j.state not in ACTIVE:
                return EXIT_FAIL if lost else EXIT_OK
            self.log(f"{reason} (phase {phase})")
            return self._restore(j, phase)

    def status(self, as_json: bool = False) -> int:
        """What is applied and since when.  A reader: takes no lock, changes no file."""
        loaded = self.store.load()
        for p in loaded.problems:
            self.complain(p)
        j = loaded.journal
        kernel = self._kernel()
        boot = boot_identity(self.paths)
        try:
            hook = self.paths.hook_link.is_symlink() or self.paths.hook_link.exists()
        except OSError:
            hook = False
        info: dict[str, object] = {
            "kernel": kernel.release,
            "generation": kernel.generation,
            "pseries": kernel.pseries,
            "policy_configured": str(self.config.policy),
            "config": self.config.source,
            "hook_installed": hook,
            "journal": None,
        }
        if j is not None:
            now = self.wall()
            info["journal"] = {
                "state": j.state,
                "policy": j.policy,
                "same_boot": same_boot(j.boot_id, boot),
                "since": j.applied_at or j.created_at,
                "seconds": round(now - (j.applied_at or j.created_at), 1),
                "window_expired": j.window_deadline is not None and now > j.window_deadline,
                "entries": [{**asdict(e), "current": self.io.read_int(e.name)} for e in j.entries],
            }
        if as_json:
            self.say(json.dumps(info, indent=1))
            return EXIT_FAIL if loaded.lost else EXIT_OK
        self.say(
            f"kernel {info['kernel']} ({info['generation']}), pseries: {'yes' if kernel.pseries else 'no'}, "
            f"hook installed: {'yes' if info['hook_installed'] else 'no'}"
        )
        self.say(f"configured policy: {info['policy_configured']} ({info['config']})")
        if j is None:
            self.say(
                "journal unreadable: run `lpmsim guard restore` after checking the settings"
                if loaded.lost
                else "nothing applied"
            )
            return EXIT_FAIL if loaded.lost else EXIT_OK
        try:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.applied_at or j.created_at))
        except (OverflowError, OSError, ValueError):
            since = f"{j.applied_at or j.created_at:.0f}"
        where = "" if same_boot(j.boot_id, boot) else " (from an earlier boot: stale, will be discarded)"
        self.say(f"journal: {j.state}, policy {j.policy}, since {since}{where}")
        if j.state == "waiting":
            self.say(f"waiting for the memory transfer ({j.completion.get('mode')}) since post")
        if j.window_deadline is not None and self.wall() > j.window_deadline and j.state in ACTIVE:
            self.say("WINDOW EXPIRED: run `lpmsim guard restore`")
        for e in j.entries:
            self.say(f"  {e.name}: original {e.original}, target {e.target}, now {self.io.read_int(e.name)}")
        return EXIT_OK

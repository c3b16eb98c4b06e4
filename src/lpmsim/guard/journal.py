"""The journal: what the guard changed and the values to put back, written atomically, kept twice.

The journal alone says what to restore (setting names, original values, the window's state and its
completion settings); restoring never needs the configuration.  Every write goes to a temporary file
in the same directory, is fsync'ed, renamed over the journal and the directory is fsync'ed, so a crash
(kill -9, power loss) leaves either the previous journal or the new one, never a torn file.

Two copies are kept: ``ROOT/run/lpmsim-guard/journal.json`` and ``ROOT/run/lpmsim-guard.journal.json``
(outside the directory), written one after the other; ``seq`` grows with every save and a reader takes
the valid copy with the highest ``seq``.  Losing, truncating or overwriting either file (or the
directory) still leaves the originals.  ``boot_id`` ties the journal to one boot: sysctls do not survive
a reboot.

Readers (``status``, the restorer's polling) never modify anything: a temporary file may belong to a
writer about to rename it.  Only a writer holding the lock sets unreadable copies aside and removes the
temporary files of writers that are no longer running.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lpmsim.guard import faults
from lpmsim.guard.files import MAX_DEPTH, bracket_depth, read_small, why
from lpmsim.guard.paths import Paths
from lpmsim.guard.policy import GENERATIONS
from lpmsim.guard.settings import VALUE_TEXT, name_problem

VERSION = 1
MAX_BYTES = 1024 * 1024

# recorded: check ran; applying: pre is writing (originals are durable first); applied: window open;
# waiting: post handed over to the detached restorer (pre-v6.0 kernels)
STATES = ("recorded", "applying", "applied", "waiting")
ACTIVE = ("applying", "applied", "waiting")

_TOKEN = re.compile(r"[0-9a-f]{1,64}")
# the completion settings a journal may carry (the same bounds as the configuration's)
_COMPLETION_BOUNDS = {
    "hold_s": (0.0, 86400.0),
    "settle_s": (0.0, 86400.0),
    "max_s": (0.001, 86400.0),
    "poll_s": (0.001, 60.0),
    "steal_margin_pct": (0.0, 100.0),
}


class JournalError(ValueError):
    """A journal file that is not a valid version-1 lpmsim-guard journal."""


@dataclass
class Entry:
    name: str
    original: str
    target: str


@dataclass
class Journal:
    boot_id: str
    policy: str
    generation: str
    state: str = "recorded"
    token: str = field(default_factory=lambda: os.urandom(8).hex())
    created_at: float = 0.0
    applied_at: float | None = None
    window_deadline: float | None = None
    waiting_since: float | None = None
    completion: dict[str, Any] = field(default_factory=dict)
    steal_baseline: dict[str, float] | None = None
    entries: list[Entry] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    seq: int = 0
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Journal:
        """Parse and check every field; JournalError (one line) for anything else than a valid journal."""
        if bracket_depth(text) > MAX_DEPTH:
            raise JournalError(f"nested deeper than {MAX_DEPTH}")
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError, MemoryError) as exc:
            raise JournalError(
                f"not JSON: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise JournalError("not a version-1 lpmsim-guard journal")
        return _checked(data)


def _no_constant(name: str) -> float:
    raise JournalError(f"{name} is not a value a journal holds")


def _need(data: dict[str, Any], key: str, kinds: tuple[type, ...], *, optional: bool = False) -> Any:
    if key not in data:
        if optional:
            return None
        raise JournalError(f"missing field {key!r}")
    value = data[key]
    if value is None and optional:
        return None
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise JournalError(f"field {key!r} has the wrong type")
    if isinstance(value, float) and not math.isfinite(value):
        raise JournalError(f"field {key!r} is not finite")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not VALUE_TEXT.fullmatch(value):
        raise JournalError(f"{what} is not short printable ASCII text")
    return value


def _checked(data: dict[str, Any]) -> Journal:
    num = (int, float)
    state = _need(data, "state", (str,))
    if state not in STATES:
        raise JournalError(f"unknown journal state {state[:20]!r}")
    generation = _need(data, "generation", (str,))
    if generation not in GENERATIONS:
        raise JournalError("unknown kernel generation")
    token = _need(data, "token", (str,))
    if not _TOKEN.fullmatch(token):
        raise JournalError("bad token")
    entries = []
    for raw in _need(data, "entries", (list,)):
        if not isinstance(raw, dict) or set(raw) != {"name", "original", "target"}:
            raise JournalError("an entry is not {name, original, target}")
        name = _text(raw["name"], "an entry's name")
        if name_problem(name) is not None:
            raise JournalError(f"entry {name!r} is not a setting name")
        entries.append(
            Entry(
                name, _text(raw["original"], f"{name}'s original"), _text(raw["target"], f"{name}'s target")
            )
        )
    if len({e.name for e in entries}) != len(entries):
        raise JournalError("a setting appears twice")
    completion = _need(data, "completion", (dict,))
    for key, value in completion.items():
        if key == "mode":
            if value not in ("hold", "steal"):
                raise JournalError("completion.mode is not hold or steal")
        elif key in _COMPLETION_BOUNDS:
            low, high = _COMPLETION_BOUNDS[key]
            if isinstance(value, bool) or not isinstance(value, num) or not low <= value <= high:
                raise JournalError(f"completion.{key} out of range")
        else:
            raise JournalError(f"unknown completion key {key[:20]!r}")
    baseline = _need(data, "steal_baseline", (dict,), optional=True)
    if baseline is not None:
        for key, value in baseline.items():
            if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, num):
                raise JournalError("steal_baseline holds a non-number")
            if not math.isfinite(value):
                raise JournalError("steal_baseline holds a non-finite number")
        if not 0.0 <= baseline.get("fraction", -1.0) <= 1.0:
            raise JournalError("steal_baseline.fraction is not in [0, 1]")
    history = _need(data, "history", (list,))
    seq = _need(data, "seq", (int,), optional=True) or 0
    return Journal(
        boot_id=_text(_need(data, "boot_id", (str,)), "boot_id"),
        policy=_text(_need(data, "policy", (str,)), "policy"),
        generation=generation,
        state=state,
        token=token,
        created_at=float(_need(data, "created_at", num)),
        applied_at=_need(data, "applied_at", num, optional=True),
        window_deadline=_need(data, "window_deadline", num, optional=True),
        waiting_since=_need(data, "waiting_since", num, optional=True),
        completion=dict(completion),
        steal_baseline=None if baseline is None else {k: float(v) for k, v in baseline.items()},
        entries=entries,
        history=[_text(h, "a history line") for h in history],
        seq=max(int(seq), 0),
    )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_name(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp.{os.getpid()}")


def write_atomic(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file, fsync'ed and renamed; raises OSError."""
    if path.parent.exists() and not path.parent.is_dir():
        raise NotADirectoryError(20, f"{path.parent} is not a directory", str(path.parent))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        data = text.encode("utf-8")
        half = len(data) // 2
        os.write(fd, data[:half])
        faults.point("journal-half-written")
        os.write(fd, data[half:])
        faults.point("journal-tmp-written")
        os.fsync(fd)
        faults.point("journal-tmp-fsynced")
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    faults.point("journal-renamed")
    _fsync_dir(path.parent)
    faults.point("journal-dir-fsynced")


@dataclass(frozen=True)
class Loaded:
    """What a read of both copies found: the journal (or None) and what was wrong with either copy."""

    journal: Journal | None
    problems: tuple[str, ...] = ()  # one line per copy that exists but cannot be used
    bad: tuple[Path, ...] = ()  # those copies

    @property
    def lost(self) -> bool:
        """A journal exists but no copy of it can be read: the originals are unknown."""
        return self.journal is None and bool(self.bad)


class Store:
    """The journal's two copies."""

    def __init__(self, primary: Path, copy: Path) -> None:
        self.files = (primary, copy)

    @classmethod
    def of(cls, paths: Paths) -> Store:
        return cls(paths.journal, paths.journal_copy)

    @property
    def primary(self) -> Path:
        return self.files[0]

    def load(self) -> Loaded:
        """Read both copies, change nothing; the valid one with the highest ``seq`` wins."""
        found: list[Journal] = []
        problems: list[str] = []
        bad: list[Path] = []
        for path in self.files:
            try:
                data = read_small(path, MAX_BYTES, follow=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                problems.append(f"{path}: cannot read the journal: {why(exc)}")
                bad.append(path)
                continue
            try:
                found.append(Journal.from_json(data.decode("utf-8")))
            except (JournalError, UnicodeDecodeError) as exc:
                problems.append(f"{path}: unreadable journal: {exc}")
                bad.append(path)
        best = max(found, key=lambda j: j.seq, default=None)  # max keeps the first (primary) on a tie
        return Loaded(best, tuple(problems), tuple(bad))

    def save(self, journal: Journal) -> None:
        """Write both copies (``seq`` + 1); raises OSError if either cannot be written."""
        journal.seq += 1
        text = journal.to_json()
        for path in self.files:
            write_atomic(path, text)

    def discard(self) -> None:
        """Remove both copies (a crash in between leaves one: the next invocation restores again, harmlessly)."""
        for path in reversed(self.files):
            with contextlib.suppress(
                FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError
            ):
                path.unlink()
                faults.point("journal-unlinked")
            with contextlib.suppress(OSError):
                _fsync_dir(path.parent)

    def set_aside(self, bad: tuple[Path, ...]) -> list[str]:
        """Under the lock: move unusable copies to ``NAME.corrupt`` (kept for the admin); returns what was done."""
        done = []
        for path in bad:
            aside = path.with_name(path.name + ".corrupt")
            try:
                if aside.is_dir() and not aside.is_symlink():
                    aside = path.with_name(f"{path.name}.corrupt.{os.getpid()}")
                os.replace(path, aside)
                done.append(f"{path} moved to {aside.name}")
            except OSError as exc:
                done.append(f"{path} could not be moved aside: {why(exc)}")
        return done

    def sweep(self) -> None:
        """Under the lock: remove temporary files whose writer is no longer running."""
        for path in self.files:
            try:
                leftovers = list(path.parent.glob(f"{path.name}.tmp.*"))
            except OSError:
                continue
            for leftover in leftovers:
                pid = leftover.name.rsplit(".", 1)[1]
                if pid.isascii() and pid.isdigit() and (int(pid) == os.getpid() or _alive(int(pid))):
                    continue
                with contextlib.suppress(OSError):
                    if leftover.is_symlink() or leftover.is_file():
                        leftover.unlink()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, not ours to signal
    return True

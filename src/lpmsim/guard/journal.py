"""The journal: what the guard changed and the values to put back, written atomically.

Every write goes to a temporary file in the same directory, is fsync'ed, renamed over the journal and
the directory is fsync'ed, so a crash (kill -9, power loss) leaves either the previous journal or the
new one, never a torn file.  ``boot_id`` ties it to one boot: sysctls do not survive a reboot.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lpmsim.guard import faults

VERSION = 1

# recorded: check ran; applying: pre is writing (originals are durable first); applied: window open;
# waiting: post handed over to the detached restorer (pre-v6.0 kernels)
STATES = ("recorded", "applying", "applied", "waiting")
ACTIVE = ("applying", "applied", "waiting")


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
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Journal:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError("not a version-1 lpmsim-guard journal")
        data["entries"] = [Entry(**e) for e in data.get("entries", [])]
        journal = cls(**data)
        if journal.state not in STATES:
            raise ValueError(f"unknown journal state {journal.state!r}")
        return journal


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
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
    os.replace(tmp, path)
    faults.point("journal-renamed")
    _fsync_dir(path.parent)
    faults.point("journal-dir-fsynced")


def save(path: Path, journal: Journal) -> None:
    write_atomic(path, journal.to_json())


def load(path: Path) -> Journal | None:
    """The journal, or None.  Leftover temporary files of a killed writer are removed.

    A journal that cannot be parsed (impossible with atomic writes, unless the disk lies) is moved aside
    to ``journal.json.corrupt`` and reported by raising ValueError.
    """
    for leftover in path.parent.glob(f"{path.name}.tmp.*"):
        with contextlib.suppress(OSError):
            leftover.unlink()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return Journal.from_json(text)
    except (ValueError, TypeError) as exc:
        os.replace(path, path.with_name(path.name + ".corrupt"))
        raise ValueError(f"{path}: unreadable journal moved to {path.name}.corrupt: {exc}") from None


def discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        faults.point("journal-unlinked")
    with contextlib.suppress(OSError):
        _fsync_dir(path.parent)

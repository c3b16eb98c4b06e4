"""The result store of a sweep: one SQLite file (``sweep.sqlite``, WAL mode) in the output directory.

It holds the expanded plan (one ``plan`` row per run key, with its axis point, variant and seed,
and the plan's description in ``meta``) and one ``runs`` row per finished run: its summary row as
JSON, its error and traceback, how many times it was started.  Each run's row is committed on its
own as it finishes; ``key`` is the primary key of ``runs`` and a row is inserted with ``ON CONFLICT
DO NOTHING``, so a key never has two rows.  SQLite's journal makes every commit atomic: a process
killed at any moment (``kill -9`` included) leaves the store as of its last commit, never half a
row, and the store opens again.  The plan is written in a single transaction too: a store killed
while it was being created holds no plan and is set up again.

The store refuses (``StoreError``, one line) a file that is not an lpmsim store and a plan other
than the one it holds (compare ``Plan.digest``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lpmsim.sweeps.plan import Point
from lpmsim.sweeps.rows import RunResult, RunSpec

STORE_NAME = "sweep.sqlite"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plan (
    idx INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    variant TEXT NOT NULL,
    seed INTEGER NOT NULL,
    point TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY REFERENCES plan(key),
    ok INTEGER NOT NULL,
    error TEXT,
    row TEXT NOT NULL,
    traceback TEXT,
    attempts INTEGER NOT NULL,
    finished_at REAL NOT NULL
);
"""


class StoreError(Exception):
    """A store that cannot be used (one line)."""


def point_from_json(text: str) -> Point:
    return tuple((str(f), v) for f, v in json.loads(text))


def point_to_json(point: Point) -> str:
    return json.dumps([[f, v] for f, v in point])


@dataclass(frozen=True)
class PlanInfo:
    """What a store says about its plan."""

    digest: str
    runs: int
    description: dict[str, Any]
    lpmsim_version: str


def store_path(out_dir: Path) -> Path:
    return out_dir / STORE_NAME


class ResultStore:
    """An open store (use as a context manager, or call ``close``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None, timeout=60.0)
            self._db.execute("PRAGMA busy_timeout = 60000")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()
            self._db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not an lpmsim result store ({exc})") from None
        if mode is None or str(mode[0]).lower() != "wal":
            raise StoreError(f"{path}: cannot use write-ahead logging on this file system")

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _tables(self) -> set[str]:
        try:
            rows = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not an lpmsim result store ({exc})") from None
        return {str(r[0]) for r in rows}

    def info(self) -> PlanInfo | None:
        """The plan the store holds (None for a new or empty store)."""
        tables = self._tables()
        if not tables:
            return None
        if not {"meta", "plan", "runs"} <= tables:
            raise StoreError(f"{self.path}: not an lpmsim result store (tables {', '.join(sorted(tables))})")
        meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        if not meta:
            return None  # created, but killed before its plan was committed
        if meta.get("schema") != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: a result store of another format (schema {meta.get('schema')})")
        return PlanInfo(
            digest=meta["plan_digest"],
            runs=int(meta["plan_runs"]),
            description=json.loads(meta["description"]),
            lpmsim_version=meta["lpmsim_version"],
        )

    def create_plan(
        self, digest: str, specs: Sequence[RunSpec], description: Mapping[str, Any], version: str
    ) -> None:
        """Write the plan, all of it or nothing (one transaction)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute("DELETE FROM runs")
            db.execute("DELETE FROM plan")
            db.execute("DELETE FROM meta")
            db.executemany(
                "INSERT INTO plan (idx, key, variant, seed, point) VALUES (?, ?, ?, ?, ?)",
                ((i, s.key, s.variant, s.seed, point_to_json(s.point)) for i, s in enumerate(specs)),
            )
            meta = {
                "schema": SCHEMA_VERSION,
                "plan_digest": digest,
                "plan_runs": str(len(specs)),
                "description": json.dumps(description, sort_keys=False),
                "lpmsim_version": version,
                "created_at": str(time.time()),
            }
            db.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", meta.items())
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def done_keys(self) -> set[str]:
        return {str(r[0]) for r in self._db.execute("SELECT key FROM runs")}

    def record(self, res: RunResult) -> bool:
        """Commit the row of a finished run; False if its key already had one (it is kept)."""
        cur = self._db.execute(
            "INSERT INTO runs (key, ok, error, row, traceback, attempts, finished_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
            (
                res.key,
                int(res.ok),
                res.error,
                json.dumps(res.row, allow_nan=False),
                res.traceback,
                res.attempts,
                time.time(),
            ),
        )
        return cur.rowcount == 1

    def results(self) -> list[RunResult]:
        """Every stored run, in plan order."""
        rows = self._db.execute(
            "SELECT r.key, r.row, r.traceback, r.attempts, p.point FROM runs r JOIN plan p ON p.key = r.key "
            "ORDER BY p.idx"
        ).fetchall()
        return [
            RunResult(str(k), json.loads(row), tb, int(att), point_from_json(pt))
            for k, row, tb, att, pt in rows
        ]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM runs").fetchone()[0])


def remove_store(path: Path) -> None:
    """Delete a store and its WAL files (``--fresh``)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

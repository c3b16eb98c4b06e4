"""Every labelled real log triages to exactly its hand-checked events (tests/data/triage/**/INDEX.toml)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from triage_helpers import all_labelled

from lpmsim.triage import triage_file
from lpmsim.triage.events import Event

LABELLED = all_labelled()
# types the corpus convention labels; the others (oops, nmi_backtrace, unrecoverable_system_reset) are
# only compared in files whose index says it labels them (labels_all_types = true)
CORPUS_TYPES = {
    "hardlockup",
    "softlockup",
    "rcu_stall",
    "workqueue_lockup",
    "hung_task",
    "panic",
    "lpm_phase",
}


def _ids() -> list[str]:
    return [Path(p).relative_to(Path(p).parents[1]).as_posix() for p, _ in LABELLED]


def _check_event(ev: Event, exp: dict[str, Any]) -> None:
    where = f"line {exp['line']}"
    assert ev.type == exp["type"], where
    if "cpus" in exp:
        assert ev.cpus == exp["cpus"], where
    if "duration_s" in exp and not exp.get("wrapped"):
        assert ev.duration_s == pytest.approx(exp["duration_s"]), where
    if "comm" in exp and not exp.get("wrapped"):
        assert ev.task == f"{exp['comm']}:{exp['pid']}", where
    if "detected_by" in exp:
        assert ev.detected_by == exp["detected_by"], where
    if "variant" in exp and ev.type == "hardlockup":
        assert ev.variant == exp["variant"], where
    if "flavor" in exp:
        assert ev.message == exp["flavor"], where
    if "kind" in exp:
        assert ev.variant == exp["kind"], where
    if "t_jiffies" in exp:
        assert ev.jiffies == exp["t_jiffies"], where
    if "message" in exp:
        assert ev.message == exp["message"], where
    if "time_s" in exp:
        assert ev.time_s == pytest.approx(exp["time_s"]), where
    if "phase" in exp:
        assert ev.phase == exp["phase"], where
    if "task" in exp:
        assert ev.task == exp["task"], where
    if "verdict" in exp:
        assert ev.verdict == exp["verdict"], where


@pytest.mark.parametrize(("path", "entry"), LABELLED, ids=_ids())
def test_labelled_log(path: str, entry: dict[str, Any]) -> None:
    data = Path(path).read_bytes()
    if "sha256" in entry:
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    if "lines" in entry:
        assert data.count(b"\n") == entry["lines"]
    tri = triage_file(path)
    types = set(entry.get("types", [])) if entry.get("labels_all_types") else CORPUS_TYPES
    got = [e for e in tri.events if e.type in types]
    expected = [e for e in entry.get("events", []) if e["type"] in types]
    assert [(e.line, e.type) for e in got] == [(e["line"], e["type"]) for e in expected]
    for ev, exp in zip(got, expected, strict=True):
        _check_event(ev, exp)
    if "crash_path_contains" in entry:
        assert tri.crash_path is not None
        for part in entry["crash_path_contains"]:
            assert part in tri.crash_path


def test_corpus_covers_every_event_type() -> None:
    seen = {e["type"] for _, entry in LABELLED for e in entry.get("events", [])}
    assert len(LABELLED) >= 6
    assert {"hardlockup", "softlockup", "rcu_stall", "hung_task", "panic"} <= seen

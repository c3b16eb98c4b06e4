"""What a directory holds (the ``--out`` of ``run``, ``compare`` or ``sweep``) and its page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lpmsim.outputs.trace import RunTrace, has_trace
from lpmsim.report.html import Page


class ReportError(Exception):
    """A directory that holds nothing to report, or a damaged file in it (one line)."""


def _json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ReportError(f"{path}: not a JSON object")
    return doc


def kind_of(d: Path) -> str:
    """``run`` (summary.json), ``compare`` or ``sweep`` (compare.json), ``store`` (only the result
    store, sweep.sqlite: what ``lpmsim.compare(out_dir=)`` leaves); ReportError otherwise."""
    if not d.is_dir():
        raise ReportError(f"{d}: no such directory")
    if (d / "summary.json").is_file():
        return "run"
    if (d / "compare.json").is_file():
        return "sweep" if _json(d / "compare.json").get("kind") == "sweep" else "compare"
    if (d / "sweep.sqlite").is_file():
        return "store"
    raise ReportError(
        f"{d} holds no summary.json (lpmsim run --out) nor compare.json (lpmsim compare/sweep --out)"
    )


def page_for(d: Path) -> Page:
    kind = kind_of(d)
    if kind == "run":
        from lpmsim.report.run_report import RunInputs, build

        summary = _json(d / "summary.json")
        if "scenario" not in summary or "events" not in summary:
            raise ReportError(f"{d / 'summary.json'}: not an lpmsim run summary")
        log: list[str] = []
        if (d / "dmesg.log").is_file():
            try:
                log = (d / "dmesg.log").read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError as exc:
                raise ReportError(f"cannot read {d / 'dmesg.log'}: {exc.strerror or exc}") from None
        trace = None
        if has_trace(d):
            try:
                trace = RunTrace.read(d)
            except (OSError, ValueError, KeyError) as exc:
                raise ReportError(f"{d / 'trace'}: cannot read the trace ({exc})") from None
        return build(RunInputs(summary=summary, log=log, trace=trace, source=str(d)))
    from lpmsim.report.compare_report import build_compare, read_runs

    if kind == "store":
        doc, runs = _from_store(d)
        kind = "sweep" if doc.get("kind") == "sweep" else "compare"
        return build_compare(doc, str(d), kind, runs)
    return build_compare(_json(d / "compare.json"), str(d), kind, read_runs(d))


def _from_store(d: Path) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """compare.json's document and runs.parquet's columns, computed from the result store (as
    ``lpmsim sweep --report-only`` does, without writing them).  A store without axes (a
    comparison) gets the comparison's layout."""
    from lpmsim.sweeps.store import StoreError
    from lpmsim.sweeps.sweep import load_result

    try:
        res = load_result(d)
        doc = res.to_json()
        runs: dict[str, list[Any]] = dict(res.arrow_table().to_pydict())
    except (StoreError, OSError) as exc:
        raise ReportError(f"{d}: cannot read the result store ({exc})") from None
    if not doc.get("axes") and len(doc.get("points") or []) == 1:
        results = {v["name"]: v for v in doc["points"][0]["variants"]}
        doc = {
            **{k: v for k, v in doc.items() if k not in ("points", "axes", "kind")},
            "variants": [
                {
                    **v,
                    "results": results[v["name"]]["results"],
                    "scenario": results[v["name"]].get("scenario"),
                }
                for v in doc.get("variants") or []
                if v.get("name") in results
            ],
        }
    return doc, runs

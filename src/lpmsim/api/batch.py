"""``lpmsim.compare`` and ``lpmsim.sweep``: many seeds, variants and points, their rows and figures.

Both wrap what the CLI runs: ``lpmsim.sweeps.compare.compare`` and ``lpmsim.sweeps.sweep.run_sweep``
(with ``lpmsim.sweeps.sweepfile`` for a sweep file).  ``rows`` has one row per run with the columns
of ``runs.parquet`` (docs/sweeps.md); ``aggregates`` the per-variant figures of ``compare.json``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lpmsim.api.source import Source, raw_scenario
from lpmsim.api.tables import frame
from lpmsim.config.scenario import Scenario
from lpmsim.sweeps import compare as compare_mod
from lpmsim.sweeps.compare import CompareResult
from lpmsim.sweeps.executors import LocalExecutor
from lpmsim.sweeps.plan import Axis, build_plan, seeds_for
from lpmsim.sweeps.sweep import SweepResult, run_sweep
from lpmsim.sweeps.sweepfile import load_sweep
from lpmsim.sweeps.variants import Variant


@dataclass(frozen=True)
class Comparison:
    """A finished comparison (``lpmsim.compare``).

    ``rows``: one row per run, sorted by variant (in the order given) then seed: a
    ``pandas.DataFrame`` if pandas is installed, else a ``pyarrow.Table`` (the columns of
    ``runs.parquet``).  ``aggregates``: per variant name, the figures of ``compare.json``
    (``p_crash`` with its interval, reports per detector...).  ``result``: the underlying
    ``lpmsim.sweeps.compare.CompareResult`` (``result.write(dir)`` writes the CLI's files)."""

    result: CompareResult
    rows: Any

    @property
    def aggregates(self) -> dict[str, dict[str, Any]]:
        return self.result.aggregates

    @property
    def complete(self) -> bool:
        """Every planned run finished (successfully or not); False after Ctrl-C."""
        return not self.result.interrupted and len(self.result.results) == self.result.planned

    def to_json(self) -> dict[str, Any]:
        """The content of ``compare.json``."""
        return self.result.to_json()


@dataclass(frozen=True)
class Sweep:
    """A sweep as its result store holds it (``lpmsim.sweep``).

    ``rows``: one row per run with a ``key`` column and one column per axis, then the columns of
    ``runs.parquet``: a ``pandas.DataFrame`` if pandas is installed, else a ``pyarrow.Table``.
    ``aggregates``: per ``(point, variant)``, the figures of ``compare.json`` (the point as the
    store writes it: ``lpmsim.sweeps.store.point_to_json``).  ``result``: the underlying
    ``lpmsim.sweeps.sweep.SweepResult``."""

    result: SweepResult
    rows: Any

    @property
    def aggregates(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.result.aggregates

    @property
    def complete(self) -> bool:
        return self.result.complete

    def to_json(self) -> dict[str, Any]:
        """The content of ``compare.json`` in the sweep's directory."""
        return self.result.to_json()


def compare(
    scenario: Source,
    variants: Sequence[Variant | str],
    *,
    runs: int = 20,
    seed: int = 1,
    set: Mapping[str, Any] | None = None,
    jobs: int | None = None,
    out_dir: str | Path | None = None,
    fresh: bool = False,
    progress: compare_mod.Progress | None = None,
) -> Comparison:
    """Run seeds ``seed .. seed+runs-1`` of every variant of ``scenario``, as ``lpmsim compare``.

    ``variants`` use the CLI's grammar (``"f200=nmi-factor:200"``, ``"none=none"``).  ``jobs``:
    processes (default: one per CPU; ``1`` runs here).  ``out_dir``: run through the resumable
    result store there, as the CLI does (a second call with the same plan runs only what is
    missing; another plan there raises ``StoreError`` unless ``fresh``).  Invalid input raises
    ``ScenarioError`` or ``VariantError`` before anything runs."""
    base = raw_scenario(scenario, set)
    res = compare_mod.compare(
        base,
        variants,
        runs,
        seed,
        jobs=jobs,
        progress=progress,
        out_dir=None if out_dir is None else Path(out_dir),
        fresh=fresh,
    )
    return Comparison(result=res, rows=frame(res.arrow_table()))


def sweep(
    source: Source,
    axes: Mapping[str, Sequence[Any]] | None = None,
    variants: Sequence[Variant | str] | None = None,
    *,
    runs: int = 20,
    seed: int = 1,
    set: Mapping[str, Any] | None = None,
    jobs: int | None = None,
    out_dir: str | Path | None = None,
    fresh: bool = False,
    progress: compare_mod.Progress | None = None,
) -> Sweep:
    """Run a sweep, as ``lpmsim sweep`` does.

    Either ``source`` is a sweep file (``lpmsim sweep``'s TOML: base, axes, variants, seeds) and
    ``axes``, ``variants``, ``runs``, ``seed`` and ``set`` are not given; or ``source`` is a
    scenario (preset, file or ``Scenario``) and ``axes`` maps field paths to their values (the
    cartesian product is run), ``variants`` the policies (default ``["none=none"]``) and seeds
    ``seed .. seed+runs-1``.  Runs go through the result store in ``out_dir`` (resumable;
    default: a temporary directory removed afterwards)."""
    if axes is None and variants is None:
        if set:
            raise TypeError("sweep: with a sweep file, give the overrides in its `set` key")
        if isinstance(source, Scenario):
            raise TypeError("sweep: a Scenario needs axes or variants; a sweep file is a path")
        plan = load_sweep(Path(source)).plan()
    else:
        base = raw_scenario(source, set)
        ax = tuple(Axis(str(f), tuple(v)) for f, v in (axes or {}).items())
        plan = build_plan(base, list(variants or ["none=none"]), seeds_for(seed, runs), ax)
    ex = LocalExecutor(jobs)
    try:
        if out_dir is not None:
            res = run_sweep(plan, Path(out_dir), ex, progress, fresh=fresh)
        else:
            with tempfile.TemporaryDirectory(prefix="lpmsim-sweep-") as tmp:
                res = run_sweep(plan, Path(tmp), ex, progress)
    finally:
        ex.close()
    return Sweep(result=res, rows=frame(res.arrow_table()))

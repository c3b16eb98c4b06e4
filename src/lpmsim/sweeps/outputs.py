"""Files written from results: ``runs.parquet`` (typed columns) and JSON, each atomically.

Each file is written to a temporary file in the same directory and renamed over the old one, so a
reader (or a kill) never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lpmsim.outputs.files import current_umask
from lpmsim.sweeps.rows import COLUMNS

JSON_NAME = "compare.json"
PARQUET_NAME = "runs.parquet"


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` then rename ``tmp`` to ``path`` (same directory: the rename is atomic)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())  # an ordinary file's mode, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temps(directory: Path, names: tuple[str, ...] = (JSON_NAME, PARQUET_NAME)) -> None:
    """Delete the temporary files of ``atomic_write`` left by a process killed while writing."""
    for name in names:
        for tmp in directory.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def atomic_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def json_text(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def arrow_type(kind: str) -> Any:
    import pyarrow as pa

    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    return pa.list_(pa.float64()) if kind == "list[float]" else types[kind]


def value_kind(values: Sequence[Any]) -> str:
    """The column type of an axis's values: bool, int, float, or str (anything else as JSON text)."""
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "float"
    return "str"


def cell_value(value: Any, kind: str) -> Any:
    if kind == "float":
        return float(value)
    if kind == "str" and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    return value


def arrow_table(
    rows: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
    leading: Sequence[tuple[str, str]] = (),
) -> Any:
    """``rows`` as a ``pyarrow.Table``: the ``leading`` columns, then the fixed ``COLUMNS``."""
    import pyarrow as pa

    fields = [pa.field(name, arrow_type(kind)) for name, kind in (*leading, *COLUMNS)]
    schema = pa.schema(fields, metadata={"lpmsim": json.dumps(dict(meta))})
    return pa.Table.from_pylist(list(rows), schema=schema)


def write_parquet(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    atomic_write(path, lambda tmp: pq.write_table(table, tmp))

"""Rows for a notebook: a ``pandas.DataFrame`` when pandas is installed, else a ``pyarrow.Table``.

pandas is optional (lpmsim does not depend on it); pyarrow is a dependency, and the Arrow table is
also what ``runs.parquet`` holds, with the same columns and types.
"""

from __future__ import annotations

import importlib.util
from typing import Any


def has_pandas() -> bool:
    return importlib.util.find_spec("pandas") is not None


def frame(table: Any) -> Any:
    """``table`` (a ``pyarrow.Table``) as a ``pandas.DataFrame`` if pandas is installed, else as is."""
    return table.to_pandas() if has_pandas() else table

"""Building blocks of the scenario schema shared by every section (config, guest, kernel).

Every field carries its unit and meaning, which ``lpmsim explain`` and
``docs/scenario-reference.md`` print; sections forbid unknown fields so that a typo is an error
naming the field, not a silently ignored setting.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def doc_field(default: Any, unit: str, description: str, **kw: Any) -> Any:
    """A pydantic field with its unit (shown by ``lpmsim explain``) and description."""
    return Field(default, description=description, json_schema_extra={"unit": unit}, **kw)


class Section(BaseModel):
    """A scenario section: frozen, unknown fields forbidden, defaults validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

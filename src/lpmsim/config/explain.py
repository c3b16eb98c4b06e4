"""Field reference generated from the schema (``lpmsim explain`` and ``docs/scenario-reference.md``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from lpmsim.config.scenario import Scenario


@dataclass(frozen=True)
class FieldDoc:
    path: str
    unit: str
    default: str
    description: str


def _default_text(value: Any) -> str:
    if value is PydanticUndefined:
        return "(required)"
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
        return json.dumps([v.model_dump(mode="json") for v in value])
    return json.dumps(value) if value is not None else "none"


def _walk(model: type[BaseModel], prefix: str) -> list[FieldDoc]:
    out: list[FieldDoc] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        ann = info.annotation
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.append(FieldDoc(path, "", "(section)", (ann.__doc__ or "").strip().splitlines()[0]))
            out.extend(_walk(ann, path + "."))
            continue
        default = info.get_default(call_default_factory=True)
        out.append(FieldDoc(path, str(extra.get("unit", "")), _default_text(default), info.description or ""))
        args = getattr(ann, "__args__", ())
        item = args[0] if args else None
        if isinstance(item, type) and issubclass(item, BaseModel):
            out.extend(_walk(item, path + "[]."))
    return out


def field_docs() -> list[FieldDoc]:
    return _walk(Scenario, "")


def reference_markdown() -> str:
    lines = [
        "# Scenario reference",
        "",
        "Generated from the schema by `lpmsim explain --markdown`.",
        "",
        "| field | unit | default | meaning |",
        "|---|---|---|---|",
    ]
    for d in field_docs():
        lines.append(f"| `{d.path}` | {d.unit} | `{d.default}` | {d.description} |")
    return "\n".join(lines) + "\n"

"""An option declared once: its type and range for pydantic, and what is allowed and the fix, read back in errors.

The spec's fields, gpuserve.Image's, gpuserve.Limits' and the weight sources' all use it, so every refusal
names the same guidance that the docs and the decorator's signature come from.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, JsonValue


def option(default: Any = ..., *, allowed: str, hint: str, doc: str = "", **kwargs: Any) -> Any:
    """A pydantic field with its guidance attached."""
    extra: dict[str, JsonValue] = {"allowed": allowed, "hint": hint}
    description = doc or None
    if "default_factory" in kwargs:
        return Field(json_schema_extra=extra, description=description, **kwargs)
    return Field(default, json_schema_extra=extra, description=description, **kwargs)


def guidance(owner: type[BaseModel], name: str) -> tuple[str, str]:
    """What is allowed and the fix, as declared on owner's field `name` ("", "" when it has none)."""
    info = owner.model_fields.get(name)
    extra = info.json_schema_extra if info is not None and isinstance(info.json_schema_extra, dict) else {}
    return str(extra.get("allowed", "")), str(extra.get("hint", ""))

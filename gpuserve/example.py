"""A valid example input made from an input schema: examples first, then defaults, then the simplest valid value."""

from __future__ import annotations

from typing import Any

from .signature import resolve_ref

# A file input's example (gpuserve.File is a `format: uri` string): a 1x1 white PNG, valid wherever images are.
EXAMPLE_FILE = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"
)


def example_input(schema: dict[str, Any]) -> dict[str, Any]:
    """One value per property, so the example shows every input a person can set."""
    defs = schema.get("$defs", {})
    value = _example(schema, defs)
    return value if isinstance(value, dict) else {}


def _example(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    schema = resolve_ref(schema, defs)
    if schema.get("examples"):
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key, []) if resolve_ref(o, defs).get("type") != "null"]
        if options:
            return _example(options[0], defs)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: _example(sub, defs) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [_example(schema.get("items", {}), defs) for _ in range(schema.get("minItems", 0))]
    if kind == "string" and schema.get("format") == "uri":
        return EXAMPLE_FILE
    if kind == "string":
        text = "example"
        text = text * (1 + schema.get("minLength", 0) // len(text))
        return text[: max(schema.get("minLength", 0), min(len("example"), schema.get("maxLength", 7)))]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in schema else 0))
        high = schema.get(
            "maximum", schema.get("exclusiveMaximum", low + 2) - (1 if "exclusiveMaximum" in schema else 0)
        )
        value = max(low, min(1, high))
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    return None

"""The inputs a conformance run sends: read from a file, or made from the model's input JSON schema.

From the schema (top-level fields; nested values keep their example):
  valid    the example input (examples, then defaults: gpuserve.example), the required fields alone, each numeric
           bound, each string length bound, each enum member, the other boolean, null where a field allows it;
  invalid  one step past each bound (1 for integers, 0.01 for numbers, one character for strings), a value outside
           each enum, a wrong type per field, each required field missing, and an unknown field where the schema
           forbids extra fields.
Which of these the model really accepts is not assumed: every target is compared with the in-process answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import GpuserveError
from ..example import example_input
from ..signature import resolve_ref

Intent = Literal["valid", "invalid", "given"]
UNKNOWN_FIELD = "gpuserve_unknown_field"
NUMBER_STEP = 0.01
# An 8x8 RGB PNG: what a file field gets when its schema gives no example (a valid image, so image models run).
TINY_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAbElEQVR42hXNQRUAUQhCUaMYhShGeVGIQhSizB+XXA7O"
    "DDtouIHBQ4YOM8suWm5h8ZKl+0CskDiBsIioHhx76LiDw0eO3oN/4FVf+J8h0PduzBqZ8x/bxNQPwgaFy192SGgelC0q13/CJaXlA8Z7WAFXOTbyAAAA"
    "AElFTkSuQmCC"
)
WRONG_TYPE: dict[str, Any] = {
    "string": 12345,
    "integer": "1",
    "number": "1.5",
    "boolean": "true",
    "array": "not a list",
    "object": "not an object",
}


@dataclass(frozen=True)
class InputCase:
    """One input to send everywhere: a label for the report, the value, and what it was made to be."""

    label: str
    value: Any
    intent: Intent


def from_schema(schema: dict[str, Any]) -> list[InputCase]:
    """Valid, boundary and invalid inputs for an object schema, each distinct value once, valid ones first."""
    defs = schema.get("$defs", {})
    properties: dict[str, Any] = {name: resolve_ref(sub, defs) for name, sub in schema.get("properties", {}).items()}
    required: list[str] = list(schema.get("required", []))
    base = example_input(schema)
    for name, sub in properties.items():
        if _is_file(sub, defs) and not sub.get("examples") and "default" not in sub:
            base[name] = TINY_PNG
    cases = [InputCase("example", base, "valid")]
    cases.append(InputCase("required fields only", {k: v for k, v in base.items() if k in required}, "valid"))
    for name, sub in properties.items():
        cases += _field_cases(name, sub, defs, base)
    for name in required:
        cases.append(InputCase(f"{name} missing", {k: v for k, v in base.items() if k != name}, "invalid"))
    if schema.get("additionalProperties") is False:
        cases.append(InputCase("unknown field", {**base, UNKNOWN_FIELD: 1}, "invalid"))
    return _distinct(sorted(cases, key=lambda case: case.intent != "valid"))


def _field_cases(name: str, schema: dict[str, Any], defs: dict[str, Any], base: dict[str, Any]) -> list[InputCase]:
    """Boundary, enum and invalid cases for one top-level field, the other fields at their example values."""

    def case(label: str, value: Any, intent: Intent) -> InputCase:
        return InputCase(f"{name}: {label}", {**base, name: value}, intent)

    options = [resolve_ref(o, defs) for o in schema.get("anyOf", schema.get("oneOf", []))]
    found = [case("null", None, "valid")] if any(o.get("type") == "null" for o in options) else []
    concrete = [o for o in options if o.get("type") != "null"]
    if len(concrete) == 1:
        schema = {**concrete[0], **{k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}}
    kind = schema.get("type")
    if "enum" in schema:
        found += [case(json.dumps(member), member, "valid") for member in schema["enum"]]
        outside = "not-a-member" if kind != "integer" else max(schema["enum"]) + 1
        found.append(case(f"{json.dumps(outside)} (not one of the choices)", outside, "invalid"))
    elif kind in ("integer", "number"):
        found += _number_cases(schema, kind, case)
    elif kind == "string" and not _is_file(schema, defs):
        found += _length_cases(schema, str(base.get(name) or "a"), case)
    elif kind == "boolean":
        found.append(case(json.dumps(not base.get(name)), not base.get(name), "valid"))
    wrong = 12345 if _is_file(schema, defs) else WRONG_TYPE.get(str(kind))
    if wrong is not None:
        found.append(case(f"{json.dumps(wrong)} (wrong type)", wrong, "invalid"))
    return found


def _number_cases(schema: dict[str, Any], kind: str, case: Any) -> list[InputCase]:
    step: float = 1 if kind == "integer" else NUMBER_STEP
    found: list[InputCase] = []
    for key, sign in (("minimum", -1), ("maximum", 1)):
        if key in schema:
            bound = schema[key]
            past = _num(bound + sign * step)
            found.append(case(f"{bound} ({key[:3]})", bound, "valid"))
            found.append(case(f"{past} (past {key[:3]} {bound})", past, "invalid"))
        exclusive = f"exclusive{key[0].upper()}{key[1:]}"
        if exclusive in schema:
            bound = schema[exclusive]
            inside = _num(bound - sign * step)
            found.append(case(f"{inside} (just inside exclusive {key[:3]} {bound})", inside, "valid"))
            found.append(case(f"{bound} (exclusive {key[:3]})", bound, "invalid"))
    return found


def _length_cases(schema: dict[str, Any], seed: str, case: Any) -> list[InputCase]:
    def text(length: int) -> str:
        return (seed * (length // len(seed) + 1))[:length]

    found: list[InputCase] = []
    if "minLength" in schema:
        shortest = int(schema["minLength"])
        found.append(case(f"length {shortest} (min)", text(shortest), "valid"))
        if shortest > 0:
            found.append(case(f"length {shortest - 1} (under min {shortest})", text(shortest - 1), "invalid"))
    if "maxLength" in schema:
        longest = int(schema["maxLength"])
        found.append(case(f"length {longest} (max)", text(longest), "valid"))
        found.append(case(f"length {longest + 1} (over max {longest})", text(longest + 1), "invalid"))
    return found


def _num(value: float) -> float:
    """Round away float noise (2.0 + 0.01 is 2.0100000000000002), keeping integers integers."""
    return value if isinstance(value, int) else round(value, 10)


def _is_file(schema: dict[str, Any], defs: dict[str, Any]) -> bool:
    """gpuserve.File's schema: a string in URI format (an https:// URL or a data: URI)."""
    schema = resolve_ref(schema, defs)
    options = [resolve_ref(o, defs) for o in schema.get("anyOf", [])]
    return any(s.get("type") == "string" and s.get("format") == "uri" for s in [schema, *options])


def _distinct(cases: list[InputCase]) -> list[InputCase]:
    seen: set[str] = set()
    kept = []
    for case in cases:
        key = json.dumps(case.value, sort_keys=True)
        if key not in seen:
            seen.add(key)
            kept.append(case)
    return kept


def from_file(path: Path) -> list[InputCase]:
    """Inputs from a JSON list, or from JSON lines (one input per line; blank lines skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputsError(path, f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
        values = [_line(path, number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    else:
        values = whole if isinstance(whole, list) else [whole]
    if not values:
        raise InputsError(path, "holds no inputs")
    return [InputCase(f"{path.name} #{index}", value, "given") for index, value in enumerate(values, 1)]


def _line(path: Path, number: int, line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputsError(path, f"line {number} is not JSON ({exc.msg} at column {exc.colno})") from None


class InputsError(GpuserveError):
    """--inputs FILE cannot be used; says which line and why."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"--inputs {path}: {problem}. Allowed: a JSON list of inputs, or one JSON input per line. "
            'Fix: write e.g. [{"name": "Ada"}, {"name": "Grace"}]'
        )

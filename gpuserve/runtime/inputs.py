"""A predict request's body -> the model's input, checked as its JSON schema reads (no `false` for a number).

pydantic's lax mode takes `false` where the schema says number and "1" where it says integer; strict JSON
validation takes what the published schema allows, plus one thing JSON Schema allows that strict mode does not:
`5.0` where it says integer (a number with no fraction is an integer there). JSON has no infinity or NaN, so
numbers that overflow to one (`1e999`) and the NaN/Infinity literals are refused too, naming the field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pydantic_core
from pydantic import BaseModel, ValidationError

# Only a body with an exponent, a very long number or a NaN/Infinity literal can hold a non-finite number.
_MAYBE_NOT_FINITE = re.compile(rb"NaN|Infinity|\d[eE]|\d{300}")


class BadJSON(ValueError):
    """The body is not JSON (or not UTF-8)."""


class Invalid(ValueError):
    """The body is JSON but breaks the schema; `errors` are {loc, msg, type} entries."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors))


class InvalidInput(ValueError):
    """The input broke the model's schema. `errors` holds pydantic-style {loc, msg, type} entries.

    `status` is what the HTTP servers answer (422; 413 and 415 for files the limits refuse).
    """

    status = 422
    kind = "InvalidInput"

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in errors))


def parse_body(model: type[BaseModel], body: bytes) -> BaseModel:
    """Validate a request body against `model` strictly. Raises BadJSON or Invalid (with `body` first in loc)."""
    try:
        value = model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        bad_json = next((e for e in errors if e["type"] == "json_invalid"), None)
        if bad_json is not None:
            raise BadJSON(str(bad_json["msg"])) from None
        if not any(e["type"] == "int_type" for e in errors):
            raise Invalid([{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors]) from None
        value = _validate_integral(model, pydantic_core.from_json(body), prefix=("body",))
    if _MAYBE_NOT_FINITE.search(body):
        found = not_finite(pydantic_core.from_json(body))
        if found:
            raise Invalid([_not_finite_error(["body", *path]) for path in found])
    return value


def validate_strict(
    model: type[BaseModel], raw: dict[str, Any], prefix: tuple[str, ...], context: dict[str, Any] | None = None
) -> BaseModel:
    """Validate an already-decoded JSON object the way parse_body does (RunPod's and cog's inputs).

    `context` reaches pydantic for values a platform made itself (cog's Path inputs: see gpuserve.files.File).
    """
    found = not_finite(raw)
    if found:
        raise Invalid([_not_finite_error([*prefix, *path]) for path in found])
    try:
        json.dumps(raw)
    except TypeError:  # values a platform made (files, paths), not JSON: pydantic's own reading
        return model.model_validate(raw, context=context)
    return _validate_integral(model, raw, prefix=prefix)


def _validate_integral(model: type[BaseModel], raw: Any, prefix: tuple[str, ...]) -> BaseModel:
    """Strict JSON validation of a decoded value, its whole-number floats read as the integers they are."""
    try:
        return model.model_validate_json(json.dumps(_integral(raw)), strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise Invalid([{"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors]) from None


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def not_finite(value: Any, path: tuple[str | int, ...] = ()) -> list[list[str | int]]:
    """Where a decoded JSON value holds an infinite or NaN number."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [list(path)]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in not_finite(item, (*path, key))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in not_finite(item, (*path, i))]
    return []


def _not_finite_error(loc: list[str | int]) -> dict[str, Any]:
    return {"loc": loc, "msg": "Input should be a finite number", "type": "finite_number"}

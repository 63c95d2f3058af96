"""A predict request's body -> the model's input, checked as its JSON schema reads (no `false` for a number).

pydantic's lax mode takes `false` where the schema says number and "1" where it says integer; strict JSON
validation takes what the published schema allows, plus one thing JSON Schema allows that strict mode does not:
`5.0` where it says integer (a number with no fraction is an integer there). JSON has no infinity or NaN, so
numbers that overflow to one (`1e999`) and the NaN/Infinity literals are refused too, naming the field.
"""

from __future__ import annotations

import functools
import json
import math
import re
from types import UnionType
from typing import Any, Union, get_args, get_origin

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
    try:  # JSON's own types, walked once: whole floats made ints, and no json.dumps (it cost more than validating)
        value = _as_json(raw)
        if _reads_as_json(model):
            try:
                validated: BaseModel = model.__pydantic_validator__.validate_python(value, strict=True)
                return validated  # model_validate()'s core, without its frame
            except ValidationError as exc:
                raise _invalid(exc, prefix) from None
    except _NotPlain:  # values a platform made (files, paths), or numbers that are not finite
        found = not_finite(raw)
        if found:
            raise Invalid([_not_finite_error([*prefix, *path]) for path in found]) from None
        try:
            json.dumps(raw)
        except TypeError:  # not JSON: pydantic's own reading
            return model.model_validate(raw, context=context)
        value = _integral(raw)
    return _validate_json(model, value, prefix=prefix)


class _NotPlain(Exception):
    """A value _as_json() leaves to the slower, thorough path."""


def _as_json(value: Any) -> Any:
    """A decoded JSON value, its whole-number floats read as the integers they are; _NotPlain for anything else
    (a type a JSON decoder does not make, a number that is not finite, a string that is not Unicode text)."""
    kind = type(value)
    if kind is str:
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:  # a lone surrogate: not JSON text, refused as a body holding it would be
                raise _NotPlain from None
        return value
    if kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if value.is_integer():
            return int(value)
        if math.isfinite(value):
            return value
        raise _NotPlain
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            out[key] = item if type(item) is str and item.isascii() else _as_json(item)  # the common case, inline
        return out
    if kind is list:
        return [_as_json(item) for item in value]
    raise _NotPlain


def _validate_integral(model: type[BaseModel], raw: Any, prefix: tuple[str, ...]) -> BaseModel:
    """Strict JSON validation of a decoded value, its whole-number floats read as the integers they are."""
    return _validate_json(model, _integral(raw), prefix=prefix)


def _validate_json(model: type[BaseModel], value: Any, prefix: tuple[str, ...]) -> BaseModel:
    """Strict JSON validation of a decoded value, as its JSON text."""
    try:
        encoded = pydantic_core.to_json(value)
    except pydantic_core.PydanticSerializationError:  # a lone surrogate: json.dumps escapes it, and pydantic refuses
        encoded = json.dumps(value).encode()
    try:
        return model.model_validate_json(encoded, strict=True)
    except ValidationError as exc:
        raise _invalid(exc, prefix) from None


def _invalid(exc: ValidationError, prefix: tuple[str, ...]) -> Invalid:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return Invalid([{"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors])


_SCALARS = (str, int, float, bool)


@functools.cache
def _reads_as_json(model: type[BaseModel]) -> bool:
    """Every field is a str, int, float or bool (or None): strict validation of the decoded value then answers
    as strict JSON validation does, values and errors alike (tests/unit/test_strict_inputs.py), without encoding
    it again."""
    return all(
        field.annotation in _SCALARS
        or (get_origin(field.annotation) in (Union, UnionType) and _optional_scalar(get_args(field.annotation)))
        for field in model.model_fields.values()
    )


def _optional_scalar(members: tuple[Any, ...]) -> bool:
    return len(members) == 2 and type(None) in members and any(member in _SCALARS for member in members)


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

"""RunPod's and cog's inputs arrive decoded; validate_strict answers for them as the HTTP server does for a body."""

from __future__ import annotations

import datetime
from typing import Any

import pydantic_core
import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from gpuserve.runtime.inputs import Invalid, validate_strict

SCALARS = create_model(
    "Scalars",
    __config__=ConfigDict(extra="forbid"),
    s=(str, Field(max_length=3)),
    i=(int, Field(default=1, ge=0)),
    f=(float, Field(default=0.5, le=10.0)),
    b=(bool, False),
    o=(int | None, None),
)
VALUES: list[Any] = [
    "",
    "abcd",
    "5",
    "true",
    0,
    -1,
    5,
    2.5,
    3.0,
    11.0,
    10**30,
    True,
    False,
    None,
    [],
    {},
    [1],
    {"a": 1},
]


def as_body(model: type[BaseModel], raw: dict[str, Any]) -> tuple[str, Any]:
    """What strict JSON validation of the same object, sent as a body, answers."""
    try:
        return "valid", model.model_validate_json(pydantic_core.to_json(raw), strict=True).model_dump()
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        return "invalid", [{"loc": ["input", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in errors]


def decoded(model: type[BaseModel], raw: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "valid", validate_strict(model, raw, prefix=("input",)).model_dump()
    except Invalid as exc:
        return "invalid", exc.errors


@pytest.mark.parametrize("field", ["s", "i", "f", "b", "o"])
def test_scalar_fields_answer_as_a_json_body_does(field: str) -> None:
    for value in VALUES:
        raw = {"s": "ab", field: value}
        if isinstance(value, float) and value.is_integer():  # read as the integer it is, on both sides
            raw[field] = int(value)
        assert decoded(SCALARS, raw) == as_body(SCALARS, raw), raw


def test_unknown_field_is_refused_by_name() -> None:
    assert decoded(SCALARS, {"s": "a", "zz": 1}) == (
        "invalid",
        [{"loc": ["input", "zz"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}],
    )


def test_whole_float_is_read_as_an_integer() -> None:
    assert decoded(SCALARS, {"s": "a", "i": 4.0}) == ("valid", {"s": "a", "i": 4, "f": 0.5, "b": False, "o": None})


def test_infinite_number_is_refused_naming_its_path() -> None:
    assert decoded(SCALARS, {"s": "a", "f": float("inf")}) == (
        "invalid",
        [{"loc": ["input", "f"], "msg": "Input should be a finite number", "type": "finite_number"}],
    )


def test_non_scalar_field_reads_strings_as_json_does() -> None:
    when = create_model("When", __config__=ConfigDict(extra="forbid"), at=(datetime.datetime, ...))
    assert decoded(when, {"at": "2026-11-28T10:00:00Z"})[0] == "valid"


def test_text_beyond_ascii_is_valid_and_a_lone_surrogate_is_not() -> None:
    assert decoded(SCALARS, {"s": "é✓"}) == ("valid", {"s": "é✓", "i": 1, "f": 0.5, "b": False, "o": None})
    assert decoded(SCALARS, {"s": "\ud800"})[0] == "invalid"


def test_the_decoded_object_is_left_as_it_was() -> None:
    raw: dict[str, Any] = {"s": "a", "i": 4.0}
    assert validate_strict(SCALARS, raw, prefix=("input",)).model_dump()["i"] == 4
    assert raw == {"s": "a", "i": 4.0} and type(raw["i"]) is float

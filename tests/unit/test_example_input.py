from __future__ import annotations

import pytest

from gpuserve.example import example_input
from gpuserve.loader import load_app
from tests.apps import ALL, Case


@pytest.mark.parametrize("case", ALL, ids=lambda c: c.key)
def test_example_input_is_valid(case: Case) -> None:
    signature = load_app(case.ref).signature
    example = example_input(signature.input_schema())
    signature.input_model.model_validate(example)  # raises if not valid
    assert set(example) == set(signature.input_model.model_fields)


def test_examples_then_defaults_then_constraints() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "examples": ["from example"], "default": "d"},
            "b": {"type": "integer", "default": 7},
            "c": {"type": "string", "minLength": 12},
            "d": {"type": "integer", "minimum": 5, "maximum": 9},
            "e": {"anyOf": [{"type": "null"}, {"type": "number", "exclusiveMinimum": 0}]},
            "f": {"type": "array", "items": {"type": "boolean"}, "minItems": 2},
        },
    }
    assert example_input(schema) == {
        "a": "from example",
        "b": 7,
        "c": "exampleexamp",
        "d": 5,
        "e": 1.0,
        "f": [False, False],
    }

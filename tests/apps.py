"""The examples and the project's own test models, with inputs and the outputs expected everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Case:
    """One app with a valid input, its expected output (None: compare across targets only) and a bad input."""

    key: str
    ref: str
    good: dict[str, Any]
    expected: Any
    bad: dict[str, Any]
    bad_field: str
    streaming: bool = False
    env: dict[str, str] = field(default_factory=dict)


HELLO = Case(
    "hello",
    f"{ROOT}/examples/hello/app.py:Hello",
    {"name": "Ada", "language": "fr", "excited": True},
    {"greeting": "Bonjour, Ada!"},
    {"name": "Ada", "language": "de"},
    "language",
)
TEXT = Case(
    "text-generation",
    f"{ROOT}/examples/text-generation/app.py:TextGeneration",
    {"prompt": "Once upon a time", "max_new_tokens": 6},
    None,
    {"prompt": "hi", "max_new_tokens": 9999},
    "max_new_tokens",
)
STREAM = Case(
    "stream",
    f"{ROOT}/tests/models/stream.py:Streamer",
    {"count": 3},
    ["alpha ", "beta ", "gamma "],
    {"count": 9},
    "count",
    streaming=True,
)
FAULTY = Case(
    "faulty", f"{ROOT}/tests/models/faulty.py:Faulty", {"fail": False}, {"calls": 1}, {"fail": "perhaps"}, "fail"
)
LIFECYCLE = Case(
    "lifecycle",
    f"{ROOT}/tests/models/lifecycle.py:Lifecycle",
    {"seconds": 0, "tag": "t1"},
    None,
    {"seconds": 99},
    "seconds",
)
ASYNC = Case(
    "async",
    f"{ROOT}/tests/models/asyncmodel.py:AsyncEcho",
    {"text": "Hi", "repeat": 2},
    ["echo:HI", "echo:HI"],
    {"text": "Hi", "mode": "sideways"},
    "mode",
)

EXAMPLES = [HELLO, TEXT]
MODELS = [STREAM, FAULTY, LIFECYCLE, ASYNC]
ALL = EXAMPLES + MODELS

"""The examples and the project's own test models, with inputs and the outputs expected everywhere."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_PNG = ROOT / "examples" / "image-filter" / "sample.png"
FILTERED_PNG = ROOT / "examples" / "image-filter" / "sample-filtered.png"  # SAMPLE_PNG at blur 1.5, width 32


def png_data_uri(path: Path) -> str:
    """A PNG file as the data: URI clients send, and that every target answers with by default."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


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
    None,  # the tiny GPT-2's words: compared across targets
    {"prompt": "hi", "max_new_tokens": 9999},
    "max_new_tokens",
    streaming=True,
)
IMAGE_FILTER = Case(
    "image-filter",
    f"{ROOT}/examples/image-filter/app.py:ImageFilter",
    {"image": png_data_uri(SAMPLE_PNG), "blur": 1.5, "width": 32},
    png_data_uri(FILTERED_PNG),
    {"image": png_data_uri(SAMPLE_PNG), "blur": 99},
    "blur",
)
EMBEDDINGS = Case(
    "embeddings",
    f"{ROOT}/examples/embeddings/app.py:Embeddings",
    {"text": "A cat sits on the mat."},
    None,  # 384 floats: compared across targets
    {"text": ""},
    "text",
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
BATCHED = Case(
    "batched",
    f"{ROOT}/tests/models/batched.py:BatchedUpper",
    {"text": "hi"},
    {"text": "HI", "batch": 1},
    {"text": "hi", "seconds": 9},
    "seconds",
)

EXAMPLES = [HELLO, TEXT, IMAGE_FILTER, EMBEDDINGS]
MODELS = [STREAM, FAULTY, LIFECYCLE, ASYNC, BATCHED]
ALL = EXAMPLES + MODELS
# Each run beyond the docker target costs a 1.5 GB virtualenv (torch, sentence-transformers) and 10-30 s, and only
# covers one more example there: `make test-full` runs these, `make test` (-m "not full") leaves them out.
FULL_BEYOND_DOCKER = [EMBEDDINGS]


def params(cases: list[Case]) -> list[Any]:
    """Cases as pytest parameters named by key, those in FULL_BEYOND_DOCKER marked `full` (for non-docker targets)."""
    return [pytest.param(c, id=c.key, marks=[pytest.mark.full] if c in FULL_BEYOND_DOCKER else []) for c in cases]

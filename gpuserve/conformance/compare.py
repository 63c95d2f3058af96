"""What one call came to on one target, and how it differs from the in-process answer.

Outputs compare as JSON, value by value: numbers as numbers (1 and 1.0 agree; true and 1 do not), floats to
FLOAT_TOLERANCE (the same model in another process may sum in another order), and `data:` URIs by their decoded
bytes (each platform may spell the media type or the encoding its own way). Refusals compare by kind only: an
invalid input must be refused as invalid everywhere, a failure must fail everywhere; each platform words them its own
way, and that wording is not compared.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

Kind = Literal["output", "invalid", "failed", "error"]
FLOAT_TOLERANCE = 1e-6
SHOWN_CHARS = 60

KIND_WORDS: dict[str, str] = {
    "output": "an output",
    "invalid": "a refusal of the input as invalid",
    "failed": "a failure of predict",
    "error": "no answer",
}


@dataclass(frozen=True)
class Outcome:
    """`output`: value is the output (a list of chunks for a stream); `invalid` and `failed` are refusals, with the
    platform's message; `error`: the harness got no answer it can read (a crash, a timeout, an unknown status)."""

    kind: Kind
    value: Any = None
    message: str = ""
    seconds: float = 0.0

    def detail(self) -> str:
        """The output, shortened, or the platform's own words for a refusal."""
        return shorten(self.value) if self.kind == "output" else self.message


@dataclass(frozen=True)
class DataBytes:
    """A `data:` URI, decoded: compared by its bytes."""

    media_type: str
    data: bytes


def difference(expected: Outcome, got: Outcome) -> str | None:
    """None when `got` answers as `expected` did; else the first difference, said in a line."""
    if got.kind == "error":
        return f"no answer: {got.message}"
    if expected.kind != got.kind:
        said = f": {got.detail()}" if got.detail() else ""
        return f"in-process gave {KIND_WORDS[expected.kind]}, the target {KIND_WORDS[got.kind]}{said}"
    if expected.kind == "output":
        return first_difference(decode_data_uris(expected.value), decode_data_uris(got.value), "output")
    return None


def first_difference(expected: Any, got: Any, path: str) -> str | None:
    """Where two decoded JSON values first differ (`output.items[2].score: 0.5 != 0.25`), or None."""
    if isinstance(expected, dict) and isinstance(got, dict):
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        if missing or extra:
            return f"{path}: keys {missing} missing, {extra} extra"
        for key in expected:
            found = first_difference(expected[key], got[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(got, list):
        text = _joined(expected)
        if text is not None and expected != got and text == _joined(got):
            return f"{path}: the same text in other pieces: {len(expected)} in-process, {len(got)} on the target"
        if len(expected) != len(got):
            return f"{path}: {len(expected)} items in-process, {len(got)} on the target"
        for index, (one, other) in enumerate(zip(expected, got, strict=True)):
            found = first_difference(one, other, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(expected, DataBytes) and isinstance(got, DataBytes):
        if expected.data == got.data:
            return None
        return f"{path}: a file of {len(expected.data)} bytes in-process, {len(got.data)} different bytes on the target"
    if _same_scalar(expected, got):
        return None
    return f"{path}: {shorten(expected)} in-process, {shorten(got)} on the target"


def _joined(items: list[Any]) -> str | None:
    """A list of strings (a stream of text) as one string; None for any other list."""
    return "".join(items) if all(isinstance(item, str) for item in items) else None


def _same_scalar(expected: Any, got: Any) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        if isinstance(expected, int) and isinstance(got, int):
            return expected == got
        return math.isclose(expected, got, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
    return type(expected) is type(got) and bool(expected == got)


def decode_data_uris(value: Any) -> Any:
    """The value with each `data:` URI string replaced by its decoded bytes (other strings stay)."""
    if isinstance(value, str) and value.startswith("data:"):
        return decode_data_uri(value) or value
    if isinstance(value, dict):
        return {key: decode_data_uris(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_data_uris(item) for item in value]
    return value


def decode_data_uri(uri: str) -> DataBytes | None:
    """`data:[<media type>][;base64],<data>` (RFC 2397) decoded; None when it is not one."""
    head, comma, payload = uri[5:].partition(",")
    if not comma:
        return None
    params = head.split(";")
    media = params[0] or "text/plain"
    if params[-1].lower() == "base64":
        try:
            return DataBytes(media, base64.b64decode(payload, validate=True))
        except (binascii.Error, ValueError):
            return None
    return DataBytes(media, unquote_to_bytes(payload))


def shorten(value: Any) -> str:
    if isinstance(value, DataBytes):
        return f"<{value.media_type}, {len(value.data)} bytes>"
    text = json.dumps(value, default=str)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"

"""What every envelope shares: its settings, its protocol, and reading the errors platforms send back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .backoff import retry_after_seconds
from .errors import (
    AuthError,
    ClientError,
    ClientInputError,
    ClientTimeout,
    FieldError,
    PredictError,
    Unavailable,
)
from .exchange import Exchange, Reply

# The error types gpuserve's runtime gives an input it refuses (InvalidInput, and the file inputs' limits).
INPUT_TYPES = frozenset(
    {"InvalidInput", "InvalidJSON", "InvalidUpload", "UnsupportedMediaType", "PayloadTooLarge", "HeadersTooLarge"}
    | {"FileMissing", "FileTooLarge", "FileFetchFailed", "InvalidFile", "UnsupportedFileType"}
)
# What gpuserve's runtime answers when this container cannot take the request now; another one can.
UNAVAILABLE_TYPES = frozenset({"Busy", "NotReady", "Interrupted"})
# "ValueError: ...", "torch.cuda.OutOfMemoryError: ...": an exception's class, then its message.
_TYPED = re.compile(r"((?:[a-z_]\w*\.)*[A-Z]\w*): (.*)", re.DOTALL)
_INVALID = "invalid input:"


@dataclass(frozen=True)
class Settings:
    """A Client's arguments, as each envelope reads them. env is where credentials are looked up."""

    url: str
    target: str
    token: str | None
    headers: Mapping[str, str]
    poll: bool
    poll_interval: float
    env: Mapping[str, str]


class Envelope(Protocol):
    """One platform's way of carrying an input to the model and its output back."""

    url: str

    def predict(self, inputs: dict[str, Any]) -> Exchange[Any]: ...

    def stream(self, inputs: dict[str, Any]) -> Exchange[None]: ...


def fields_of(detail: Any) -> list[FieldError]:
    """pydantic-style {loc, msg, type} entries (gpuserve, cog, FastAPI) as fields named without the envelope:
    ["body", "input", "prompt"] is "prompt"."""
    found: list[FieldError] = []
    for entry in detail if isinstance(detail, list) else []:
        if not isinstance(entry, dict):
            continue
        loc = [str(part) for part in entry.get("loc") or []]
        while loc and loc[0] in ("body", "input"):
            loc = loc[1:]
        found.append(FieldError(".".join(loc) or "input", str(entry.get("msg", "")), str(entry.get("type", ""))))
    return found


def fields_in_text(text: str) -> list[FieldError]:
    """gpuserve's InvalidInput as text ("input.count: Input should be ...; input.x: ..."), as fields."""
    found = []
    for part in re.split(r"; (?=input[.:])", text.strip()):
        name, sep, message = part.partition(": ")
        if not sep:
            return [FieldError("input", text.strip())]
        name = name.removeprefix("input.") if name != "input" else name
        found.append(FieldError(name, message))
    return found


def error_from_text(text: str, status: int | None = None) -> ClientError:
    """A failure a platform reports as one string (RunPod's job error, cog's prediction error), read back
    into the error gpuserve's runtime meant: refused input, interrupted by a drain, or the model's exception."""
    text = text.strip()
    while text.startswith("Prediction failed: "):  # cog wraps the model's error, sometimes twice
        text = text.removeprefix("Prediction failed: ")
    typed = _TYPED.fullmatch(text)
    kind, message = (typed.group(1), typed.group(2)) if typed else (None, text)
    if message.startswith(_INVALID) and kind in (None, "ValueError"):  # the cog bridge raises ValueError
        rest = message.removeprefix(_INVALID).strip()
        return ClientInputError(f"{_INVALID} {rest}", type="InvalidInput", fields=fields_in_text(rest), status=status)
    if kind in INPUT_TYPES:
        return ClientInputError(message, type=kind, status=status)
    if kind in UNAVAILABLE_TYPES:
        return Unavailable(message, type=kind, status=status)
    return PredictError(message, type=kind, status=status)


def error_from_http(reply: Reply, *, auth: str, what: str) -> ClientError:
    """The error for an HTTP answer that carries none of the platform's own: by status alone.

    auth says how to fix a refused credential; what names the platform's API for a 404."""
    message = _message_of(reply)
    retry_after = retry_after_seconds(reply.headers.get("retry-after"))
    status = reply.status
    if status in (401, 403):
        return AuthError(f"{message or 'credentials refused'}; {auth}", status=status)
    if status in (408, 409, 425, 429) or (status >= 500 and status != 504):
        return Unavailable(message or "the endpoint cannot answer now", status=status, retry_after=retry_after)
    if status == 504:
        return ClientTimeout(message or "the endpoint's gateway timed out", status=status)
    if status == 404:
        return ClientError(f"{message or 'not found'}: is the url the {what}?", status=status)
    if status in (400, 413, 415, 422, 431):
        return ClientInputError(message or "the input was refused", status=status)
    return ClientError(message or f"unexpected answer: {reply.text[:200]}", status=status)


def _message_of(reply: Reply) -> str:
    """The most telling text of an error body: RFC 7807 detail, a {"error": ...}, or a short plain body."""
    data = reply.data()
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            error = error.get("message")
        for value in (data.get("detail"), error, data.get("title"), data.get("message")):
            if isinstance(value, str) and value:
                return value
    text = reply.text
    return text if text and len(text) <= 300 and not text.startswith("<") else ""


def auth_header(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}

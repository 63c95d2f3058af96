"""The steps an envelope takes, as data: each platform's envelope is a generator that yields them and is sent
the answers, so it is written once and run by both drivers (httpx.Client and httpx.AsyncClient).

An envelope yields a Request and is sent its Reply; yields Wait to pause between polls; yields NEXT_EVENT,
after a Request that opened an event stream, and is sent the next Event (None at the stream's end); yields a
Chunk for each piece of a stream's output. It returns the output (predict) or None (stream). The driver throws
a ClientError into it where a step fails (no connection, the deadline passed), so an envelope can clean up
(cancel a hosted job) before the error goes on.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

_NO_BODY: Any = object()


@dataclass(frozen=True)
class Request:
    """events: ask for server-sent events (the Reply says whether a stream opened). cleanup: a request sent on
    the way out (cancelling a job): it gets a short time of its own, past the deadline, and its failure is
    ignored (the driver sends None)."""

    method: str
    url: str
    json: Any = _NO_BODY
    headers: Mapping[str, str] = field(default_factory=dict)
    events: bool = False
    cleanup: bool = False

    @property
    def has_body(self) -> bool:
        return self.json is not _NO_BODY


@dataclass(frozen=True)
class Reply:
    """An answer, read whole; or, where `streaming`, the head of an event stream whose events follow."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    streaming: bool = False

    def data(self) -> Any:
        """The body as JSON; None where it is not JSON (a proxy's HTML page, an empty body)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace").strip()


@dataclass(frozen=True)
class Event:
    """One server-sent event: its name ("message" when unnamed) and its data, as text."""

    name: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Chunk:
    value: Any


class NextEvent:
    """Asks the driver for the next event of the stream the last events=True Request opened."""


NEXT_EVENT = NextEvent()
Step = Request | Wait | NextEvent | Chunk
# What an envelope's predict and stream return: sent a Reply, an Event (or None) or None, in step with what it yields.
Exchange = Generator[Step, Any, T]

"""A small keep-alive JSON client for the servers a run starts, on the standard library.

httpx is a test dependency, not one of gpuserve's; `http.client` does what is needed here: JSON in and out,
and server-sent events read line by line as they arrive.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Event:
    """One server-sent event: its name ("message" when unnamed) and its data, decoded from JSON."""

    name: str
    data: Any


class Client:
    """One keep-alive connection to 127.0.0.1:port; reconnects once when the server closed it."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def get(self, path: str) -> Answer:
        response = self._send("GET", path, None, {})
        return Answer(response.status, response.getheader("content-type") or "", response.read())

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Answer:
        """POST body as JSON (None is sent as `null`)."""
        response = self._send("POST", path, json.dumps(body).encode(), headers or {})
        return Answer(response.status, response.getheader("content-type") or "", response.read())

    def events(self, path: str, body: Any) -> tuple[Answer, list[Event]]:
        """POST asking for server-sent events: the answer's head, and every event, read to the stream's end.

        A server that answers with something other than an event stream (a 422, say) gives its whole body in the
        answer and no events.
        """
        response = self._send("POST", path, json.dumps(body).encode(), {"Accept": "text/event-stream"})
        content_type = response.getheader("content-type") or ""
        if not content_type.startswith("text/event-stream"):
            return Answer(response.status, content_type, response.read()), []
        return Answer(response.status, content_type, b""), list(_read_events(response))

    def _send(self, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> http.client.HTTPResponse:
        sent = {"Content-Type": "application/json", **headers} if data is not None else headers
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=data, headers=sent)
                return self._conn.getresponse()
            except TimeoutError:
                self.close()
                raise
            except (OSError, http.client.HTTPException):
                self.close()  # the server closed an idle keep-alive connection: one fresh try
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _read_events(response: http.client.HTTPResponse) -> Iterator[Event]:
    name, data = "message", list[str]()
    while True:
        raw = response.readline()
        if not raw:
            return
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                yield Event(name, json.loads("\n".join(data)))
            name, data = "message", list[str]()
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())

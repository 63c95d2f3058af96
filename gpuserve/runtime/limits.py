"""Admission control for the HTTP server: the limits in force, a concurrency gate with a bounded queue, the body.

The spec declares the limits (`gpuserve.Limits`); GPUSERVE_MAX_BODY_BYTES and GPUSERVE_MAX_QUEUE override
the two an operator most often tunes, at run time, without a rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..spec import Limits, ModelSpec

DEFAULT_MAX_BODY_BYTES = Limits().max_body_bytes
RETRY_AFTER_SECONDS = 1
OVERRIDES = {"max_body_bytes": "GPUSERVE_MAX_BODY_BYTES", "max_queue": "GPUSERVE_MAX_QUEUE"}


@dataclass(frozen=True)
class InForce:
    """The limits one server enforces: the spec's, with the run-time overrides applied."""

    max_body_bytes: int
    max_queue: int
    read_timeout: float
    max_header_bytes: int
    keep_alive: int
    max_connections: int

    @classmethod
    def of(cls, spec: ModelSpec, env: Mapping[str, str] | None = None, **given: int | None) -> InForce:
        """Given values (tests, embedders) win, then the environment's overrides, then the spec."""
        env = os.environ if env is None else env

        def override(field: str) -> int | None:
            value = given.get(field)
            if value is None and env.get(OVERRIDES[field], "").strip():
                value = _whole_number(OVERRIDES[field], env[OVERRIDES[field]])
            return value

        limits = spec.limits
        body, queue = override("max_body_bytes"), override("max_queue")
        return cls(
            max_body_bytes=body if body is not None else limits.max_body_bytes,
            max_queue=queue if queue is not None else limits.queue_for(spec.concurrency),
            read_timeout=float(limits.read_timeout),
            max_header_bytes=limits.max_header_bytes,
            keep_alive=limits.keep_alive,
            max_connections=limits.max_connections,
        )

    def uvicorn(self) -> dict[str, Any]:
        """The uvicorn.Config arguments that hold slow or greedy clients to these limits."""
        return {
            # httptools and uvloop, as gpuserve requires them (h11 and asyncio where they are missing): Front
            # measures headers that arrive at once, the protocol those that trickle in.
            "http": headers_bounded(self.max_header_bytes),
            "loop": "auto",
            "h11_max_incomplete_event_size": self.max_header_bytes,  # where only h11 is there
            "timeout_keep_alive": self.keep_alive,
            "limit_concurrency": self.max_connections,
            "server_header": False,
            "access_log": False,  # gpuserve logs each request once, structured (runtime/logs.py)
        }


def headers_bounded(max_header_bytes: int) -> Any:
    """uvicorn's httptools protocol, holding a request's line and headers to max_header_bytes while they arrive
    (as h11 does; httptools buffers them whole): past it, 431 and the connection closed. "h11" without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "h11"

    from .answers import error_json

    message = f"the request's headers are over limits.max_header_bytes={max_header_bytes}"
    body = json.dumps(error_json("HeadersTooLarge", message, None)).encode()
    refusal = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
    )

    class HeadersBounded(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.head_bytes = 0
            self.awaiting_head = True  # between a request's end (or the connection's start) and its headers' end
            self.ends = 0  # header blocks and requests ended so far

        def on_headers_complete(self) -> None:
            self.awaiting_head = False
            self.ends += 1
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self.awaiting_head = True
            self.ends += 1

        def data_received(self, data: bytes) -> None:
            ends = self.ends
            super().data_received(data)
            if self.ends != ends:  # a header block or a request ended in these bytes: the next head starts afresh
                self.head_bytes = 0
            elif self.awaiting_head:  # neither: all these bytes are a request line's and headers'
                self.head_bytes += len(data)
                if self.head_bytes > max_header_bytes and not self.transport.is_closing():
                    self.transport.write(refusal)
                    self.transport.close()

    return HeadersBounded


def _whole_number(name: str, text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{name}={text!r} is not a whole number of 0 or more; unset it or set e.g. {name}=64")
    return int(text)


class QueueFull(Exception):
    """More requests are waiting than the queue holds."""


class Gate:
    """At most `concurrency` requests run predict at once; at most `max_queue` wait for a slot, first come first
    served. A waiter is a plain future (an asyncio.Semaphore needs a task to race a drain against)."""

    def __init__(self, concurrency: int, max_queue: int) -> None:
        self.concurrency = concurrency
        self.max_queue = max_queue
        self.running = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def full(self) -> bool:
        """No slot is free now (or others wait for one): a request would wait."""
        return self.running >= self.concurrency or bool(self._waiters)

    def enqueue(self) -> asyncio.Future[None]:
        """A future done once the caller holds a slot: done already when one is free. Raises QueueFull."""
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self.full:
            self.running += 1
            granted.set_result(None)
        elif len(self._waiters) >= self.max_queue:
            raise QueueFull(f"{self.running} running and {self.waiting} waiting; the queue holds {self.max_queue}")
        else:
            self._waiters.append(granted)
        return granted

    def withdraw(self, granted: asyncio.Future[None]) -> None:
        """Give up a place in the queue, or the slot where it was granted meanwhile."""
        if granted.done() and not granted.cancelled():
            self.release()
            return
        granted.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(granted)

    async def acquire(self) -> None:
        """Wait for a slot. Raises QueueFull when the queue is already full."""
        granted = self.enqueue()
        try:
            await granted
        except asyncio.CancelledError:
            self.withdraw(granted)
            raise

    def release(self) -> None:
        """Hand the slot to the first request still waiting, else free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.running -= 1


class BodyRefused(Exception):
    """The body was over the limit (413) or too slow to arrive (408)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


class _BodyClock:
    """Ends body reads past their deadline: one timer a second for a whole server, not one a request (a timer
    each cost as much as the rest of reading a small body). A read ends up to a second after its deadline."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.reading: dict[asyncio.Task[Any], float] = {}
        self.expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, task: asyncio.Task[Any], seconds: float) -> None:
        self.reading[task] = self.loop.time() + seconds
        if self._timer is None:
            self._timer = self.loop.call_later(1.0, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for task, deadline in list(self.reading.items()):
            if deadline <= now:
                del self.reading[task]
                self.expired.add(task)
                task.cancel()
        self._timer = self.loop.call_later(1.0, self._sweep) if self.reading else None


_clocks: dict[asyncio.AbstractEventLoop, _BodyClock] = {}


def _clock() -> _BodyClock:
    loop = asyncio.get_running_loop()
    clock = _clocks.get(loop)
    if clock is None:
        for gone in [known for known in _clocks if known.is_closed()]:
            del _clocks[gone]
        clock = _clocks[loop] = _BodyClock(loop)
    return clock


async def read_body(receive: Any, *, max_bytes: int, timeout: float, declared: bytes | None) -> bytes | None:
    """The whole request body (predict needs all of it anyway), or None when the client went away.

    Raises BodyRefused past max_bytes (before reading, when Content-Length says so) or past `timeout` seconds.
    """
    too_large = BodyRefused(
        413,
        "PayloadTooLarge",
        f"request body is over {max_bytes} bytes; send less (a URL to the data), or raise "
        "limits.max_body_bytes (GPUSERVE_MAX_BODY_BYTES at run time)",
    )
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    clock = _clock()
    task = asyncio.current_task()
    assert task is not None
    clock.watch(task, timeout)
    try:
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            chunks.append(chunk)
            more = message.get("more_body", False)
    except asyncio.CancelledError:
        if task not in clock.expired:
            raise
        clock.expired.discard(task)
        task.uncancel()
        raise BodyRefused(
            408, "RequestTimeout", f"the body did not arrive within limits.read_timeout={timeout:g}s; send it faster"
        ) from None
    finally:
        clock.reading.pop(task, None)
        clock.expired.discard(task)
    return b"".join(chunks)

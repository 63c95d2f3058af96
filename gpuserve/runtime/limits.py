"""Admission control for the HTTP server: the limits in force, a concurrency gate with a bounded queue, the body.

The spec declares the limits (`gpuserve.Limits`); GPUSERVE_MAX_BODY_BYTES and GPUSERVE_MAX_QUEUE override
the two an operator most often tunes, at run time, without a rebuild.
"""

from __future__ import annotations

import asyncio
import os
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
            "http": "h11",  # h11 enforces the header size limit
            "h11_max_incomplete_event_size": self.max_header_bytes,
            "timeout_keep_alive": self.keep_alive,
            "limit_concurrency": self.max_connections,
            "server_header": False,
            "access_log": False,  # gpuserve logs each request once, structured (runtime/logs.py)
        }


def _whole_number(name: str, text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"{name}={text!r} is not a whole number of 0 or more; unset it or set e.g. {name}=64")
    return int(text)


class QueueFull(Exception):
    """More requests are waiting than the queue holds."""


class Gate:
    """At most `concurrency` requests run predict at once; at most `max_queue` wait for a slot."""

    def __init__(self, concurrency: int, max_queue: int) -> None:
        self.concurrency = concurrency
        self.max_queue = max_queue
        self.running = 0
        self.waiting = 0
        self._slots: asyncio.Semaphore | None = None

    async def acquire(self) -> None:
        """Wait for a slot. Raises QueueFull when the queue is already full."""
        if self._slots is None:  # created on the serving loop, not at import
            self._slots = asyncio.Semaphore(self.concurrency)
        if self._slots.locked() and self.waiting >= self.max_queue:
            raise QueueFull(f"{self.running} running and {self.waiting} waiting; the queue holds {self.max_queue}")
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1

    def release(self) -> None:
        assert self._slots is not None
        self.running -= 1
        self._slots.release()


class BodyRefused(Exception):
    """The body was over the limit (413) or too slow to arrive (408)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


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
    try:
        async with asyncio.timeout(timeout):
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
    except TimeoutError:
        raise BodyRefused(
            408, "RequestTimeout", f"the body did not arrive within limits.read_timeout={timeout:g}s; send it faster"
        ) from None
    return b"".join(chunks)

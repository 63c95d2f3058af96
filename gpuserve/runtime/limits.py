"""Admission control for the HTTP server: a concurrency gate with a bounded queue, and a body-size cap."""

from __future__ import annotations

import asyncio
import json
from typing import Any

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


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


class BodyLimit:
    """ASGI middleware: bodies over max_bytes answer 413 before predict sees them."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        # Read the whole body first (predict needs all of it anyway), then replay it to the app.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            message: dict[str, Any] = await receive()
            return message

        await self.app(scope, replay, send)

    async def _reject(self, send: Any) -> None:
        message = f"request body is over {self.max_bytes} bytes; set GPUSERVE_MAX_BODY_BYTES to raise the limit"
        body = json.dumps({"error": {"type": "PayloadTooLarge", "message": message}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

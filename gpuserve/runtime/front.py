"""The server's front door, around every request: its id, the bearer check, the body, then one log line,
the metrics and a trace span once it is answered. Plain ASGI, so a request costs a few dict lookups.

POST /predict goes from here straight to its endpoint, past FastAPI's middleware stack and router: on a
no-op model those cost more than everything gpuserve does (docs/benchmarks.md). The route stays declared
in FastAPI, so /openapi.json and /docs describe it, and every other path is FastAPI's."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from . import logs
from .answers import send_error
from .auth import OPEN_PATHS, Tokens
from .limits import BodyRefused, InForce, read_body
from .metrics import Metrics
from .tracing import end_span, start_span

# A client's X-Request-ID is kept when it is a plain id; anything else (long, odd characters) gets a fresh one.
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
log = logging.getLogger("gpuserve")
# The /predict endpoint: a Request in, the Response to send out.
Endpoint = Callable[[Request], Awaitable[Any]]


def request_id_of(given: bytes | None) -> str:
    """The client's id where it is a plain one, else 32 random hex digits (uuid4's length; random's generator,
    seeded from the OS and reseeded after a fork, not an OS call per request: an id is not a secret)."""
    if given is not None and _SAFE_ID.fullmatch(given):
        return given.decode()
    return f"{random.getrandbits(128):032x}"


class Front:
    """Wraps the FastAPI app (kept as `.app`: serve() reads its state)."""

    def __init__(
        self,
        app: Any,
        *,
        model: str,
        limits: InForce,
        tokens: Tokens | None,
        metrics: Metrics,
        tracer: Any = None,
        predict: Endpoint | None = None,
    ) -> None:
        self.app = app
        self.predict = predict
        self.model = model
        self.limits = limits
        self.tokens = tokens
        self.metrics = metrics
        self.tracer = tracer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        request_id = request_id_of(headers.get(b"x-request-id"))
        echoed = (b"x-request-id", request_id.encode())
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        path, method = scope["path"], scope["method"]
        status = 500  # what the client sees if the app fails before answering

        async def answer(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        span = start_span(self.tracer, method=method, path=path, headers=headers) if self.tracer else None
        try:
            # The protocol (limits.headers_bounded, or h11) bounds headers that arrive in pieces; here, all of them.
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.limits.max_header_bytes:
                await send_error(
                    answer,
                    status=431,
                    kind="HeadersTooLarge",
                    message=f"the request's headers are {size} bytes, over limits.max_header_bytes="
                    f"{self.limits.max_header_bytes}",
                    request_id=request_id,
                )
                return
            if (
                self.tokens is not None
                and path not in OPEN_PATHS
                and not self.tokens.allows(headers.get(b"authorization"))
            ):
                await send_error(
                    answer,
                    status=401,
                    kind="Unauthorized",
                    message="send the header `Authorization: Bearer <token>` with a token of GPUSERVE_AUTH_TOKENS",
                    request_id=request_id,
                    headers={"WWW-Authenticate": 'Bearer realm="gpuserve"'},
                )
                return
            await self._admit(scope, receive, answer, request_id, headers.get(b"content-length"))
        finally:
            seconds = time.perf_counter() - started
            queue = state.get("queue_seconds")
            batch = getattr(state.get("job"), "batch_size", None)  # inputs in the predict call that answered it
            self.metrics.observe(path=path, status=status, seconds=seconds, queue_seconds=queue, batch_size=batch)
            fields = {
                "request_id": request_id,
                "model": self.model,
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": logs.ms(seconds),
                "queue_ms": None if queue is None else logs.ms(queue),
                "batch_size": batch,
            }
            logs.request(fields, quiet=path in logs.QUIET_PATHS)
            if span is not None:
                end_span(span, status=status, request_id=request_id, queue_seconds=queue)

    async def _admit(self, scope: dict[str, Any], receive: Any, send: Any, request_id: str, declared: Any) -> None:
        try:
            body = await read_body(
                receive, max_bytes=self.limits.max_body_bytes, timeout=self.limits.read_timeout, declared=declared
            )
        except BodyRefused as refused:
            await send_error(
                send, status=refused.status, kind=refused.kind, message=refused.message, request_id=request_id
            )
            return
        if body is None:  # the client went away
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            message: dict[str, Any] = await receive()
            return message

        if self.predict is not None and scope["method"] == "POST" and scope["path"] == "/predict":
            await self._predict(scope, replay, send, request_id)
        else:
            await self.app(scope, replay, send)

    async def _predict(self, scope: dict[str, Any], receive: Any, send: Any, request_id: str) -> None:
        """The endpoint and its response, as FastAPI's route would run them; what it raises is a 500 here."""
        assert self.predict is not None
        try:
            response = await self.predict(Request(scope, receive))
        except Exception:
            log.exception("gpuserve: POST /predict %s failed", request_id)
            await send_error(
                send, status=500, kind="InternalError", message="see the server log", request_id=request_id
            )
            return
        await response(scope, receive, send)

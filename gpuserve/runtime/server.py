"""The HTTP contract every target serves: GET /health, POST /predict (JSON or SSE), /openapi.json, /docs."""

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, create_model

from .host import ModelHost
from .jobs import Event, Jobs, grace_seconds
from .limits import DEFAULT_MAX_BODY_BYTES, BodyLimit, Gate, QueueFull

log = logging.getLogger("gpuserve")


class Timing(BaseModel):
    queue_ms: float = Field(description="Time spent waiting for a free slot")
    predict_ms: float = Field(description="Time spent in predict")


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorResponse(BaseModel):
    id: str | None = None
    error: ErrorBody


class Health(BaseModel):
    status: str = Field(description="ready, starting, draining, failed or stopped")
    model: str
    error: str | None = None
    phases: dict[str, dict[str, float]] | None = Field(
        None, description="seconds (and bytes fetched) of this container's start: fetch, load (setup()), ready"
    )


def _error(
    status: int, kind: str, message: str, request_id: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorResponse(id=request_id, error=ErrorBody(type=kind, message=message))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def create_app(host: ModelHost, *, max_queue: int | None = None, max_body_bytes: int | None = None) -> Any:
    """Build the ASGI app for one host. Setup runs in the background so /health can say "starting"."""
    spec, signature = host.spec, host.signature
    gate = Gate(
        spec.concurrency,
        max_queue if max_queue is not None else int(os.environ.get("GPUSERVE_MAX_QUEUE", 64 * spec.concurrency)),
    )
    jobs = Jobs(host, gate, grace_seconds(host))
    input_model = signature.input_model
    output_type: Any = list[signature.output_type] if signature.streaming else signature.output_type  # type: ignore[name-defined]
    has_required = any(f.is_required() for f in input_model.model_fields.values())
    input_default: Any = ... if has_required else Field(default_factory=input_model)
    request_model = create_model("PredictRequest", input=(input_model, input_default))
    response_model = create_model("PredictResponse", id=(str, ...), output=(output_type, ...), timing=(Timing, ...))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        setup_task = asyncio.create_task(asyncio.to_thread(host.setup))
        setup_task.add_done_callback(lambda t: t.cancelled() or t.exception())  # failure is kept in host.state
        try:
            yield
        finally:
            host.drain()
            if not setup_task.done():
                await asyncio.wait([setup_task])
            await asyncio.to_thread(host.shutdown)

    app = FastAPI(
        title=spec.name,
        version=os.environ.get("GPUSERVE_MODEL_VERSION", "0"),
        description=f'{spec.class_name} served by gpuserve. POST /predict with {{"input": {{...}}}}.',
        lifespan=lifespan,
    )

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health() -> JSONResponse:
        body = Health(status=host.state, model=spec.name, error=host.error, phases=host.phases or None)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if host.ready else 503)

    @app.post(
        "/predict",
        response_model=response_model,
        responses={
            200: {
                "content": {
                    "text/event-stream": {
                        "schema": {"type": "string", "description": "one `data:` event per chunk, then `event: done`"}
                    }
                }
            },
            500: {"model": ErrorResponse, "description": "predict raised"},
            503: {"model": ErrorResponse, "description": "not ready, draining, or the queue is full"},
            504: {"model": ErrorResponse, "description": "predict ran past the model's timeout"},
        },
    )
    async def predict(body: request_model, request: Request) -> Any:  # type: ignore[valid-type]
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        if not host.ready:
            status = host.state if host.state != "ready" else "starting"
            return _error(
                503,
                "NotReady",
                f"model is {status}" + (f": {host.error}" if host.error else ""),
                request_id,
                {"Retry-After": "1"},
            )
        value = body.input  # type: ignore[attr-defined]
        wants_events = "text/event-stream" in request.headers.get("accept", "")
        if wants_events:
            return StreamingResponse(
                _events(value, request_id),
                media_type="text/event-stream",
                headers={"X-Request-ID": request_id, "Cache-Control": "no-cache"},
            )
        async with jobs.answering_one():
            return await _answer(value, request_id)

    async def _answer(value: BaseModel, request_id: str) -> JSONResponse:
        queued = time.perf_counter()
        try:
            job = await jobs.start(value)
        except QueueFull as exc:
            return _error(503, "Busy", str(exc), request_id, {"Retry-After": "1"})
        if isinstance(job, Event):
            return _interrupted(request_id)
        started = time.perf_counter()
        deadline = time.monotonic() + spec.timeout
        chunks: list[Any] = []
        while True:
            event = await jobs.next(job, deadline)
            if event.kind == "chunk":
                chunks.append(event.value)
            elif event.kind == "result":
                output: Any = event.value
            elif event.kind == "end":
                break
            elif event.kind == "error":
                failed = event.value
                log.error("gpuserve: predict %s failed: %s", request_id, failed, exc_info=failed.__cause__)
                return _error(500, failed.type, failed.message, request_id)
            elif event.kind == "timeout":
                return _error(504, "Timeout", f"predict ran past timeout={spec.timeout}s", request_id)
            else:
                return _interrupted(request_id)
        if signature.streaming:
            output = chunks
        done = time.perf_counter()
        timing = Timing(queue_ms=round((started - queued) * 1000, 3), predict_ms=round((done - started) * 1000, 3))
        return JSONResponse(
            {"id": request_id, "output": output, "timing": timing.model_dump()}, headers={"X-Request-ID": request_id}
        )

    def _interrupted(request_id: str) -> JSONResponse:
        message = f"the container is shutting down and this request could not finish within grace={jobs.grace:g}s"
        return _error(503, "Interrupted", message + "; retry it", request_id, {"Retry-After": "1"})

    async def _events(value: BaseModel, request_id: str) -> AsyncIterator[bytes]:
        async with jobs.answering_one():
            async for event in _event_stream(value, request_id):
                yield event

    async def _event_stream(value: BaseModel, request_id: str) -> AsyncIterator[bytes]:
        started = time.perf_counter()
        count = 0
        try:
            job = await jobs.start(value)
        except QueueFull as exc:
            yield _sse({"type": "Busy", "message": str(exc)}, "error")
            return
        if isinstance(job, Event):
            yield _sse({"type": "Interrupted", "message": "the container is shutting down; retry"}, "error")
            return
        deadline = time.monotonic() + spec.timeout
        while True:
            event = await jobs.next(job, deadline)
            if event.kind in ("chunk", "result"):
                count += 1
                yield _sse(event.value)
            elif event.kind == "end":
                break
            elif event.kind == "error":
                yield _sse({"type": event.value.type, "message": event.value.message}, "error")
                return
            elif event.kind == "timeout":
                yield _sse({"type": "Timeout", "message": f"predict ran past timeout={spec.timeout}s"}, "error")
                return
            else:
                message = f"the container is shutting down past grace={jobs.grace:g}s; retry"
                yield _sse({"type": "Interrupted", "message": message}, "error")
                return
        yield _sse(
            {"id": request_id, "chunks": count, "predict_ms": round((time.perf_counter() - started) * 1000, 3)}, "done"
        )

    limit = (
        max_body_bytes
        if max_body_bytes is not None
        else int(os.environ.get("GPUSERVE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    )
    app.state.host = host
    app.state.jobs = jobs
    return BodyLimit(app, limit)


async def _collect(chunks: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in chunks]

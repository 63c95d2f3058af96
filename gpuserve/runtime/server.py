"""The HTTP contract every target serves: GET /health, POST /predict (JSON or SSE), /openapi.json, /docs."""

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, create_model

from . import logs
from .answers import ErrorResponse, JSONResponse, error_json
from .auth import Tokens
from .files import file_fields
from .front import Front
from .host import ModelHost
from .inputs import BadJSON, Invalid, InvalidInput, parse_body
from .jobs import Event, Jobs, grace_seconds
from .limits import RETRY_AFTER_SECONDS, Gate, InForce, QueueFull
from .metrics import CONTENT_TYPE, Metrics
from .openapi import predict_responses, with_request_schema
from .tracing import tracer_from_env
from .uploads import BadUpload, is_multipart, multipart_as_json

log = logging.getLogger("gpuserve")
# The status logged for a request whose client hung up while it was queued (nginx's "client closed request").
CLIENT_GONE = 499


class Timing(BaseModel):
    queue_ms: float = Field(description="Time spent waiting for a free slot")
    predict_ms: float = Field(description="Time spent in predict")


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
    return JSONResponse(error_json(kind, message, request_id), status_code=status, headers=headers)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def create_app(
    host: ModelHost,
    *,
    max_queue: int | None = None,
    max_body_bytes: int | None = None,
    env: Mapping[str, str] | None = None,
    tracer: Any = None,
) -> Any:
    """Build the ASGI app for one host. Setup runs in the background so /health can say "starting".

    Limits, auth tokens and tracing are read from `env` (the process environment by default).
    """
    env = os.environ if env is None else env
    spec, signature = host.spec, host.signature
    limits = InForce.of(spec, env, max_queue=max_queue, max_body_bytes=max_body_bytes)
    tokens = Tokens.from_env(env)
    gate = Gate(spec.slots, limits.max_queue)  # batched: enough requests in to fill each group (docs/batching.md)
    jobs = Jobs(host, gate, grace_seconds(host))
    metrics = Metrics(
        model=spec.name,
        in_flight=lambda: jobs.answering,
        queue_depth=lambda: gate.waiting,
        running=lambda: gate.running,
        ready=lambda: 1 if host.ready else 0,
        setup_seconds=lambda: host.setup_seconds or 0.0,
    )
    logs.configure()
    input_model = signature.input_model
    output_type: Any = list[signature.output_type] if signature.streaming else signature.output_type  # type: ignore[name-defined]
    has_required = any(f.is_required() for f in input_model.model_fields.values())
    input_default: Any = ... if has_required else Field(default_factory=input_model)
    request_model = create_model("PredictRequest", input=(input_model, input_default))
    uploads = sorted(file_fields(input_model))  # file inputs: /predict also takes multipart/form-data
    response_model = create_model("PredictResponse", id=(str, ...), output=(output_type, ...), timing=(Timing, ...))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        setup_task = asyncio.create_task(asyncio.to_thread(host.setup))
        setup_task.add_done_callback(lambda t: t.cancelled() or t.exception())  # failure is kept in host.state
        setup_task.add_done_callback(lambda _t: metrics.cold_starts.inc() if host.ready else None)
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

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text"}}
        | ({401: {"model": ErrorResponse, "description": "no valid bearer token"}} if tokens else {}),  # type: ignore[dict-item]
    )
    async def metrics_text() -> Response:
        return Response(metrics.scrape(), media_type=CONTENT_TYPE)

    @app.post("/predict", response_model=response_model, responses=predict_responses(auth=tokens is not None))
    async def predict(request: Request) -> Any:
        request_id: str = request.state.request_id
        content_type = request.headers.get("content-type", "")
        if _is_json(content_type):
            raw = await request.body()
        elif uploads and is_multipart(content_type):
            try:
                raw = await multipart_as_json(request, input_model)
            except BadUpload as exc:
                return _error(400, "InvalidUpload", f"the multipart body cannot be read: {exc}", request_id)
        else:
            message = "send the body as JSON with the header `Content-Type: application/json`"
            if uploads:
                message += " or upload files as multipart/form-data (one form field per input)"
            return _error(415, "UnsupportedMediaType", message, request_id)
        try:
            body = parse_body(request_model, raw)
        except BadJSON as exc:
            return _error(400, "InvalidJSON", f"the body is not JSON in UTF-8: {exc}", request_id)
        except Invalid as exc:
            invalid = error_json("InvalidInput", str(exc), request_id) | {"detail": exc.errors}
            return JSONResponse(invalid, status_code=422)
        if not host.ready:
            status = host.state if host.state != "ready" else "starting"
            return _error(
                503,
                "NotReady",
                f"model is {status}" + (f": {host.error}" if host.error else ""),
                request_id,
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        value = body.input  # type: ignore[attr-defined]
        wants_events = "text/event-stream" in request.headers.get("accept", "")
        if wants_events:
            return StreamingResponse(
                _events(value, request_id, request.state),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        async with jobs.answering_one():
            return await _answer(value, request_id, request.state, request.receive)

    async def _answer(value: BaseModel, request_id: str, state: Any, receive: Any) -> JSONResponse:
        queued = time.perf_counter()

        async def client_gone() -> None:  # the body is read: what the connection says next is that it closed
            while (await receive())["type"] != "http.disconnect":
                pass

        try:
            job = await jobs.start(value, client_gone)
        except QueueFull as exc:
            return _error(503, "Busy", str(exc), request_id, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        if isinstance(job, Event) and job.kind == "gone":  # nobody reads it: the log line and metrics say 499
            return _error(CLIENT_GONE, "ClientGone", "the client closed the connection while queued", request_id)
        if isinstance(job, Event):
            return _interrupted(request_id)
        started = time.perf_counter()
        state.queue_seconds = started - queued
        state.job = job  # the request log line reads the size of the batch that answered it
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
            elif event.kind == "error" and isinstance(event.value, InvalidInput):
                refused = event.value  # a file input its limits refuse, found while fetching it
                body = error_json(refused.kind, str(refused), request_id) | {"detail": refused.errors}
                return JSONResponse(body, status_code=refused.status)
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
        timing = {"queue_ms": round((started - queued) * 1000, 3), "predict_ms": round((done - started) * 1000, 3)}
        return JSONResponse({"id": request_id, "output": output, "timing": timing})  # the shape of Timing

    def _interrupted(request_id: str) -> JSONResponse:
        message = f"the container is shutting down and this request could not finish within grace={jobs.grace:g}s"
        return _error(503, "Interrupted", message + "; retry it", request_id, {"Retry-After": str(RETRY_AFTER_SECONDS)})

    async def _events(value: BaseModel, request_id: str, state: Any) -> AsyncIterator[bytes]:
        async with jobs.answering_one():
            async for event in _event_stream(value, request_id, state):
                yield event

    async def _event_stream(value: BaseModel, request_id: str, state: Any) -> AsyncIterator[bytes]:
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
        state.queue_seconds = time.perf_counter() - started
        deadline = time.monotonic() + spec.timeout
        while True:
            event = await jobs.next(job, deadline)
            if event.kind in ("chunk", "result"):
                count += 1
                yield _sse(event.value)
            elif event.kind == "end":
                break
            elif event.kind == "error" and isinstance(event.value, InvalidInput):
                refused = event.value
                yield _sse({"type": refused.kind, "message": str(refused), "status": refused.status}, "error")
                return
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

    app.openapi = with_request_schema(app, request_model, auth=tokens is not None, uploads=uploads)  # type: ignore[method-assign]
    app.state.host = host
    app.state.jobs = jobs
    app.state.metrics = metrics
    app.state.limits = limits
    tracer = tracer if tracer is not None else tracer_from_env(spec.name, env)
    # POST /predict is called straight from Front; the route above stays for OpenAPI and /docs.
    front = Front(app, model=spec.name, limits=limits, tokens=tokens, metrics=metrics, tracer=tracer, predict=predict)
    return front


async def _collect(chunks: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in chunks]

"""The error body every answer of the HTTP contract uses, sent from FastAPI routes and from bare ASGI middleware."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    type: str = Field(description="what went wrong, e.g. InvalidInput, Busy, Timeout, or the exception predict raised")
    message: str


class ErrorResponse(BaseModel):
    id: str | None = Field(None, description="the request id, also in the X-Request-ID header")
    error: ErrorBody


def error_json(kind: str, message: str, request_id: str | None) -> dict[str, Any]:
    return ErrorResponse(id=request_id, error=ErrorBody(type=kind, message=message)).model_dump(exclude_none=True)


async def send_error(
    send: Any, *, status: int, kind: str, message: str, request_id: str | None, headers: dict[str, str] | None = None
) -> None:
    """Answer from an ASGI middleware, before the app has seen the request."""
    body = json.dumps(error_json(kind, message, request_id)).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})

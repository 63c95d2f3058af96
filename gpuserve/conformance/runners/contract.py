"""Calling gpuserve's own HTTP contract (docs/http.md): the Docker image's server and Modal's web endpoint.

A stream is read as server-sent events, chunk by chunk, as a client of a streaming model reads it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..client import Answer, Client
from ..compare import Outcome
from ..processes import TargetDown
from .base import Call, timed

INVALID_STATUSES = {400, 413, 415, 422}  # bad JSON, a file too big or of a refused type, the schema
FAILED_STATUSES = {500, 504}  # predict raised, or ran past its timeout


def health(client: Client) -> bool:
    """Ready; raises TargetDown once the model's setup failed (it will not come up)."""
    answer = client.get("/health")
    if answer.status == 200:
        return True
    body = answer.json() if answer.content_type.startswith("application/json") else {}
    if isinstance(body, dict) and body.get("status") == "failed":
        raise TargetDown(f"setup failed: {body.get('error')}")
    return False


def predict_call(client: Client, streaming: bool) -> Call:
    def call(value: Any) -> Outcome:
        started = time.perf_counter()
        if not streaming:
            return _read(client.post("/predict", {"input": value}), started)
        answer, events = client.events("/predict", {"input": value})
        if answer.body or answer.status != 200:
            return _read(answer, started)
        chunks: list[Any] = []
        for event in events:
            if event.name == "message":
                chunks.append(event.data)
            elif event.name == "error":
                return _event_error(event.data, started)
            elif event.name == "done":
                return timed(started, "output", chunks)
        return timed(started, "error", message=f"the event stream ended without `done` after {len(chunks)} chunks")

    return call


def _read(answer: Answer, started: float) -> Outcome:
    try:
        body = answer.json()
    except ValueError:
        return timed(started, "error", message=f"HTTP {answer.status}, not JSON: {answer.body[:200]!r}")
    if answer.status == 200 and isinstance(body, dict) and "output" in body:
        return timed(started, "output", body["output"])
    error = body.get("error", {}) if isinstance(body, dict) else {}
    message = f"HTTP {answer.status} {error.get('type', '')}: {error.get('message', json.dumps(body)[:200])}"
    if answer.status in INVALID_STATUSES:
        return timed(started, "invalid", message=message)
    if answer.status in FAILED_STATUSES:
        return timed(started, "failed", message=message)
    return timed(started, "error", message=message)


def _event_error(data: Any, started: float) -> Outcome:
    error = data if isinstance(data, dict) else {}
    message = f"event error {error.get('type', '')}: {error.get('message', data)}"
    if error.get("type") == "InvalidInput" or error.get("status") in INVALID_STATUSES:
        return timed(started, "invalid", message=message)
    if error.get("type") in ("Busy", "Interrupted"):
        return timed(started, "error", message=message)
    return timed(started, "failed", message=message)

"""gpuserve's own HTTP contract (docs/http.md): `gpuserve serve`, the Docker image, and the Modal web endpoint.

POST /predict {"input": ...} answers {"output": ...}; with `Accept: text/event-stream`, one event per chunk
then `done`. Errors are {"error": {"type", "message"}} (422 adds the fields in "detail"); 503 with
Retry-After while a container is not ready, busy or draining.
"""

from __future__ import annotations

from typing import Any

import httpx

from .backoff import retry_after_seconds
from .base import (
    INPUT_TYPES,
    UNAVAILABLE_TYPES,
    Settings,
    auth_header,
    error_from_http,
    fields_of,
)
from .errors import ClientConfigError, ClientError, ClientInputError, ClientTimeout, PredictError, Unavailable
from .exchange import NEXT_EVENT, Chunk, Exchange, Reply, Request

TOKEN_ENV = "GPUSERVE_AUTH_TOKEN"
MODAL_KEY_ENV, MODAL_SECRET_ENV = "MODAL_KEY", "MODAL_SECRET"


def base_url(url: str, field: str = "url", allowed: str = "http(s)://HOST[:PORT][/PATH]") -> str:
    """An http(s) URL without its trailing slash, or a ClientConfigError naming the argument."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ClientConfigError(f"{field}={url!r} is not a URL ({exc}). Allowed: {allowed}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ClientConfigError(
            f"{field}={url!r} is not an http(s) URL with a host. Allowed: {allowed}. "
            "Fix: give the endpoint's address, e.g. http://127.0.0.1:8000"
        )
    return str(parsed.copy_with(query=None, fragment=None)).rstrip("/")


class GpuserveHTTP:
    def __init__(self, settings: Settings) -> None:
        self.target = settings.target
        self.url = base_url(settings.url).removesuffix("/predict")
        env = settings.env
        headers = auth_header(settings.token or env.get(TOKEN_ENV))
        if settings.target == "modal" and env.get(MODAL_KEY_ENV) and env.get(MODAL_SECRET_ENV):
            headers |= {"Modal-Key": env[MODAL_KEY_ENV], "Modal-Secret": env[MODAL_SECRET_ENV]}
        self.headers = headers | dict(settings.headers)

    def predict(self, inputs: dict[str, Any]) -> Exchange[Any]:
        reply = yield Request("POST", f"{self.url}/predict", json={"input": inputs}, headers=self.headers)
        data = reply.data()
        if reply.status == 200 and isinstance(data, dict) and "output" in data:
            return data["output"]
        raise self.error(reply)

    def stream(self, inputs: dict[str, Any]) -> Exchange[None]:
        headers = {**self.headers, "Accept": "text/event-stream"}
        reply = yield Request("POST", f"{self.url}/predict", json={"input": inputs}, headers=headers, events=True)
        if not reply.streaming:
            data = reply.data()
            if reply.status == 200 and isinstance(data, dict) and "output" in data:  # a server that does not stream
                yield Chunk(data["output"])
                return
            raise self.error(reply)
        while True:
            event = yield NEXT_EVENT
            if event is None:
                raise Unavailable("the event stream ended before its `done` event (the connection was closed)")
            if event.name == "done":
                return
            if event.name == "error":
                body = event.json()
                raise error_of(str(body.get("type", "")), str(body.get("message", "")), body.get("status"))
            yield Chunk(event.json())

    def error(self, reply: Reply) -> ClientError:
        data = reply.data()
        body = data.get("error") if isinstance(data, dict) else None
        status = reply.status
        if status in (401, 403) or not isinstance(data, dict) or not isinstance(body, dict):
            # not gpuserve's own answer (a proxy, a gateway, a wrong URL), or a refused token: by status
            return error_from_http(reply, auth=self.auth_hint, what="gpuserve server's base URL (it serves /predict)")
        kind, message = str(body.get("type", "")), str(body.get("message", ""))
        if 400 <= status < 500 and status not in (408, 429):
            return ClientInputError(message, type=kind, status=status, fields=fields_of(data.get("detail")))
        if status == 500:
            return PredictError(message, type=kind or None, status=status)
        if status == 504:
            return ClientTimeout(message, type=kind, status=status)
        retry_after = retry_after_seconds(reply.headers.get("retry-after"))
        return Unavailable(message, type=kind, status=status, retry_after=retry_after)

    @property
    def auth_hint(self) -> str:
        hint = f"set {TOKEN_ENV} (or token=) to one of the server's GPUSERVE_AUTH_TOKENS"
        if self.target == "modal":
            hint += f"; behind Modal's proxy auth, set {MODAL_KEY_ENV} and {MODAL_SECRET_ENV} to a proxy auth token"
        return hint


def error_of(kind: str, message: str, status: Any = None) -> ClientError:
    """gpuserve's {"type", "message"} (an error body, or an error event of a stream) as the ClientError it means."""
    code = status if isinstance(status, int) else None
    if kind in UNAVAILABLE_TYPES:
        return Unavailable(message, type=kind, status=code)
    if kind == "Timeout":
        return ClientTimeout(message, type=kind, status=code)
    if kind in INPUT_TYPES or (code is not None and 400 <= code < 500):
        return ClientInputError(message, type=kind, status=code)
    return PredictError(message, type=kind or None, status=code)

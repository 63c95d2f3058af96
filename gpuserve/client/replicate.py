"""Replicate's hosted predictions API, as its own clients (replicate-python, replicate-javascript) call it.

POST /v1/models/{owner}/{name}/predictions, /v1/deployments/{owner}/{name}/predictions, or /v1/predictions
with a version, sent with `Prefer: wait` (the answer holds the prediction for up to 60 s); a prediction not
finished by then is polled at its `urls.get`. stream() asks for `"stream": true` and reads `urls.stream`:
`output` events (plain text), `error`, `done`. Errors are RFC 7807 bodies ({"title", "detail", "status"};
422 adds `invalid_fields`). Authorization: Bearer REPLICATE_API_TOKEN. A prediction still running at the
client's timeout is cancelled at its `urls.cancel`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from .base import Settings, auth_header, error_from_http, error_from_text
from .errors import AuthError, ClientConfigError, ClientError, ClientInputError, ClientTimeout, FieldError, Unavailable
from .exchange import NEXT_EVENT, Chunk, Exchange, Reply, Request, Wait
from .gpuserve_http import base_url

API = "https://api.replicate.com"
TOKEN_ENV = "REPLICATE_API_TOKEN"
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
_REF = re.compile(r"(?P<owner>[\w.-]+)/(?P<name>[\w.-]+)(?::(?P<version>[0-9a-f]{8,}))?")
_VERSION = re.compile(r"[0-9a-f]{64}")
_PATHS = re.compile(r"/v1/(?:(?:models|deployments)/[\w.-]+/[\w.-]+/)?predictions")
ALLOWED = (
    "owner/name, owner/name:VERSION, a 64-hex VERSION, or the full URL of "
    f"{API}/v1/models/OWNER/NAME/predictions, {API}/v1/deployments/OWNER/NAME/predictions or "
    f"{API}/v1/predictions?version=VERSION"
)


class Replicate:
    def __init__(self, settings: Settings) -> None:
        self.url, self.version = _create_url(settings.url.strip())
        token = settings.token or settings.env.get(TOKEN_ENV)
        if not token:
            raise AuthError(
                f"{TOKEN_ENV} is not set: Replicate's API needs a token. "
                f"Fix: export {TOKEN_ENV}=r8_... (replicate.com/account/api-tokens) or pass token="
            )
        self.headers = auth_header(token) | dict(settings.headers)
        self.poll = settings.poll
        self.interval = settings.poll_interval

    def predict(self, inputs: dict[str, Any]) -> Exchange[Any]:
        headers = self.headers if self.poll else {**self.headers, "Prefer": "wait"}
        reply = yield Request("POST", self.url, json=self._body(inputs), headers=headers)
        prediction = self._prediction(reply)
        prediction = yield from self._until_done(prediction)
        return self._output(prediction)

    def stream(self, inputs: dict[str, Any]) -> Exchange[None]:
        reply = yield Request("POST", self.url, json=self._body(inputs) | {"stream": True}, headers=self.headers)
        prediction = self._prediction(reply)
        url = (prediction.get("urls") or {}).get("stream")
        if not url:  # no stream for this model: its output as it grows (a list), or whole at the end
            yield from self._growing(prediction)
            return
        headers = {**self.headers, "Accept": "text/event-stream", "Cache-Control": "no-store"}
        opened = yield Request("GET", url, headers=headers, events=True)
        if not opened.streaming:
            raise self._error(opened)
        while True:
            event = yield NEXT_EVENT
            if event is None:
                raise Unavailable("the event stream ended before its `done` event (the connection was closed)")
            if event.name == "output":
                yield Chunk(event.data)
            elif event.name == "error":
                raise error_from_text(_detail(event.data))
            elif event.name == "done":
                reason = _detail(event.data, key="reason")
                if reason in ("canceled", "aborted"):
                    raise ClientError(f"the prediction was {reason}", type=reason)
                return

    def _body(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"input": inputs} | ({"version": self.version} if self.version else {})

    def _until_done(self, prediction: dict[str, Any]) -> Exchange[dict[str, Any]]:
        while prediction.get("status") not in TERMINAL:
            prediction = yield from self._poll(prediction)
        return prediction

    def _growing(self, prediction: dict[str, Any]) -> Exchange[None]:
        """replicate-python's output_iterator: poll, yielding the items a list output gained since last time."""
        sent = 0
        while True:
            output = prediction.get("output")
            if isinstance(output, list):
                for item in output[sent:]:
                    yield Chunk(item)
                sent = len(output)
            if prediction.get("status") in TERMINAL:
                break
            prediction = yield from self._poll(prediction)
        output = self._output(prediction)
        if not isinstance(output, list) and output is not None:
            yield Chunk(output)

    def _poll(self, prediction: dict[str, Any]) -> Exchange[dict[str, Any]]:
        """The prediction a moment later; cancelled where the client's time runs out first."""
        try:
            yield Wait(self.interval)
            reply = yield Request("GET", _urls(prediction)["get"], headers=self.headers)
        except ClientTimeout:
            cancel = (prediction.get("urls") or {}).get("cancel")
            if cancel:
                yield Request("POST", cancel, headers=self.headers, cleanup=True)
            raise
        return self._prediction(reply)

    def _prediction(self, reply: Reply) -> dict[str, Any]:
        data = reply.data()
        if 200 <= reply.status < 300 and isinstance(data, dict) and "status" in data:
            return data
        raise self._error(reply)

    def _error(self, reply: Reply) -> ClientError:
        data = reply.data()
        if reply.status == 422 and isinstance(data, dict):
            fields = [
                FieldError(
                    str(f.get("field", "input")).removeprefix("input."),
                    str(f.get("description", "")),
                    str(f.get("type", "")),
                )
                for f in data.get("invalid_fields") or []
                if isinstance(f, dict)
            ]
            message = str(data.get("detail") or data.get("title") or reply.text).strip()
            return ClientInputError(message, type="InvalidInput", status=422, fields=fields)
        hint = f"set {TOKEN_ENV} (or token=) to a valid API token (replicate.com/account/api-tokens)"
        return error_from_http(reply, auth=hint, what=f"Replicate model or deployment ({ALLOWED})")

    def _output(self, prediction: dict[str, Any]) -> Any:
        status = prediction.get("status")
        if status == "succeeded":
            return prediction.get("output")
        if status == "failed":
            raise error_from_text(str(prediction.get("error") or "the prediction failed"))
        raise ClientError(f"the prediction was {status}", type=str(status))


def _create_url(given: str) -> tuple[str, str | None]:
    """Where to POST a prediction, and the version to send with it."""
    if _VERSION.fullmatch(given):
        return f"{API}/v1/predictions", given
    ref = _REF.fullmatch(given)
    if ref and "://" not in given:
        if ref["version"]:
            return f"{API}/v1/predictions", ref["version"]
        return f"{API}/v1/models/{ref['owner']}/{ref['name']}/predictions", None
    url = base_url(given, allowed=ALLOWED)
    parsed = httpx.URL(given)
    if not _PATHS.search(parsed.path) or not parsed.path.rstrip("/").endswith("/predictions"):
        raise ClientConfigError(f"url={given!r} is not a Replicate predictions URL. Allowed: {ALLOWED}")
    version = parsed.params.get("version")
    if parsed.path.rstrip("/").endswith("/v1/predictions") and not version:
        raise ClientConfigError(
            f"url={given!r} needs a version: /v1/predictions runs one model version. "
            f"Fix: {url}?version=VERSION, or owner/name:VERSION. Allowed: {ALLOWED}"
        )
    return url, version


def _urls(prediction: dict[str, Any]) -> dict[str, str]:
    urls = prediction.get("urls")
    if not isinstance(urls, dict) or not urls.get("get"):
        raise ClientError(f"the prediction has no urls.get to poll: {json.dumps(prediction)[:200]}")
    return urls


def _detail(data: str, key: str = "detail") -> str:
    """An event's data: JSON with `key` (the done event's {"reason"}, an error's {"detail"}), or plain text."""
    try:
        parsed = json.loads(data)
    except ValueError:
        return data
    if isinstance(parsed, dict):
        return str(parsed.get(key) or parsed.get("message") or ("" if key == "reason" else data))
    return data

"""RunPod serverless: POST /runsync (or /run, then /status/{id} until done) and /stream/{id}.

Hosted endpoints live at https://api.runpod.ai/v2/{endpoint_id} and need RUNPOD_API_KEY; they are read
with GET /status and GET /stream, as runpod's own Endpoint client does. The runpod SDK's local API
(`python handler.py --rp_serve_api`) serves the same paths without the /v2/{id} prefix, and only as POST;
a URL without /v2/ is taken for it. Answers are {"id", "status", "output" | "error"}; a job that outlasts
the client's timeout on a hosted endpoint is cancelled (POST /cancel/{id}), so it stops costing money.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from .base import Settings, auth_header, error_from_http, error_from_text
from .errors import AuthError, ClientError, ClientTimeout
from .exchange import Chunk, Exchange, Reply, Request, Wait
from .gpuserve_http import base_url

HOSTED = "https://api.runpod.ai/v2"
KEY_ENV = "RUNPOD_API_KEY"
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
_ENDPOINT_ID = re.compile(r"[a-z0-9]{6,64}")
_OPERATIONS = ("/runsync", "/run")
# What runpod's local API answers /stream for a handler that is not a generator (its job stays queued).
_NOT_A_GENERATOR = "Stream not supported"


class RunPod:
    def __init__(self, settings: Settings) -> None:
        given = settings.url.strip()
        if _ENDPOINT_ID.fullmatch(given):
            given = f"{HOSTED}/{given}"
        url = base_url(given, allowed=f"{HOSTED}/ENDPOINT_ID, a bare ENDPOINT_ID, or the local API's http://HOST:PORT")
        for operation in _OPERATIONS:
            url = url.removesuffix(operation)
        self.url = url
        self.hosted = "/v2/" in httpx.URL(url).path
        key = settings.token or settings.env.get(KEY_ENV)
        if self.hosted and not key:
            raise AuthError(
                f"{KEY_ENV} is not set: RunPod's hosted endpoints need an API key. "
                f"Fix: export {KEY_ENV}=... (runpod.io console > Settings > API Keys) or pass token="
            )
        self.headers = auth_header(key) | dict(settings.headers)
        self.read = "GET" if self.hosted else "POST"
        self.poll = settings.poll
        self.interval = settings.poll_interval

    def predict(self, inputs: dict[str, Any]) -> Exchange[Any]:
        job = yield from self._submit("run" if self.poll else "runsync", inputs)
        job = yield from self._until_done(job)
        return self._output(job)

    def stream(self, inputs: dict[str, Any]) -> Exchange[None]:
        job = yield from self._submit("run", inputs)
        sent = 0
        try:
            while True:
                reply = yield Request(self.read, f"{self.url}/stream/{job['id']}", headers=self.headers)
                part = self._job(reply)
                pieces = [item.get("output") if isinstance(item, dict) else item for item in part.get("stream") or []]
                for piece in pieces:
                    _raise_if_error_chunk(piece)
                    sent += 1
                    yield Chunk(piece)
                status = part.get("status")
                if status == "FAILED" and not sent and _NOT_A_GENERATOR in str(part.get("error")):
                    break  # the local API, a handler that is not a generator: its output, once, below
                # The local API answers once, with every chunk; hosted, read until a final answer with none.
                if status in FINAL and (not self.hosted or not pieces):
                    if status != "COMPLETED":
                        raise self._failure(part)
                    if sent or not self.hosted:
                        return
                    break  # hosted and nothing streamed: a handler that is not a generator
                yield Wait(self.interval)
        except ClientTimeout:
            yield from self._cancel(job)
            raise
        done = yield from self._until_done({"id": job["id"], "status": "IN_PROGRESS"})
        output = self._output(done)
        if output is not None and output != []:
            yield Chunk(output)

    def _submit(self, operation: str, inputs: dict[str, Any]) -> Exchange[dict[str, Any]]:
        reply = yield Request("POST", f"{self.url}/{operation}", json={"input": inputs}, headers=self.headers)
        return self._job(reply)

    def _until_done(self, job: dict[str, Any]) -> Exchange[dict[str, Any]]:
        """Poll /status/{id} until the job is final (runsync answers IN_QUEUE or IN_PROGRESS past its wait)."""
        first = True
        try:
            while job.get("status") not in FINAL:
                if not first or self.hosted:
                    yield Wait(self.interval)
                first = False
                reply = yield Request(self.read, f"{self.url}/status/{job['id']}", headers=self.headers)
                job = self._job(reply)
        except ClientTimeout:
            yield from self._cancel(job)
            raise
        return job

    def _cancel(self, job: dict[str, Any]) -> Exchange[None]:
        if self.hosted:
            yield Request("POST", f"{self.url}/cancel/{job['id']}", headers=self.headers, cleanup=True)

    def _job(self, reply: Reply) -> dict[str, Any]:
        data = reply.data()
        if reply.status == 200 and isinstance(data, dict) and "status" in data and "id" in data:
            return data
        if reply.status == 200:
            raise ClientError(f"not a RunPod job: {reply.text[:200]}", status=reply.status)
        hint = f"set {KEY_ENV} (or token=) to a valid RunPod API key"
        raise error_from_http(reply, auth=hint, what=f"RunPod endpoint ({HOSTED}/ENDPOINT_ID)")

    def _output(self, job: dict[str, Any]) -> Any:
        if job.get("status") != "COMPLETED":
            raise self._failure(job)
        output = job.get("output")
        for piece in output if isinstance(output, list) else [output]:
            _raise_if_error_chunk(piece)  # runpod's local /runsync gathers a generator's error into its output
        return output

    def _failure(self, job: dict[str, Any]) -> ClientError:
        status = job.get("status")
        if status == "FAILED":
            return job_error(job.get("error"))
        if status == "TIMED_OUT":
            return ClientTimeout("the job ran past the endpoint's execution timeout", type="TIMED_OUT")
        return ClientError(f"the job ended {status}", type=str(status))


def job_error(error: Any) -> ClientError:
    """A FAILED job's error: gpuserve's "Type: message" text, or the JSON runpod makes of a raised exception
    ({"error_type": "<class 'ValueError'>", "error_message": ...})."""
    text = error if isinstance(error, str) else json.dumps(error)
    try:
        raised = json.loads(text)
    except ValueError:
        raised = None
    if isinstance(raised, dict) and "error_message" in raised:
        kind = re.sub(r"^<class '(?:[\w.]*\.)?(\w+)'>$", r"\1", str(raised.get("error_type", "")))
        return error_from_text(f"{kind}: {raised['error_message']}" if kind else str(raised["error_message"]))
    return error_from_text(text)


def _raise_if_error_chunk(piece: Any) -> None:
    """gpuserve's generator handler ends a stream that fails with {"error": "..."} as its last chunk."""
    if isinstance(piece, dict) and set(piece) == {"error"} and isinstance(piece["error"], str):
        raise job_error(piece["error"])

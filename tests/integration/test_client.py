"""gpuserve.Client against the real local runtimes on 127.0.0.1, and stand-ins for the hosted-only APIs.

Real: `gpuserve serve`, runpod's `--rp_serve_api`, cog's server (coglet), the Modal ASGI app, and a failover
from a draining gpuserve server to the runpod API. Stand-in (a FastAPI app following their documented requests
and answers): Replicate's predictions API and RunPod's hosted /v2/{endpoint} API with its bearer key.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

import gpuserve
from gpuserve.adapters._common import PINS
from gpuserve.loader import load_app
from tests.apps import FAULTY, LIFECYCLE, ROOT, STREAM, Case
from tests.integration.conftest import build_elsewhere
from tests.integration.test_cog_target import cog_server
from tests.integration.test_modal_target import DRIVER, offline_env
from tests.proc import free_port, started, wait_until
from tests.venvs import python_of, requirement_lines, venv_for

DRAINABLE = f"{ROOT}/tests/models/drainable.py:Drainable"
FAST = gpuserve.Backoff(base=0.05, cap=0.2)
ENV = {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}  # the test models load nothing


def serve_local(ref: str, port: int, env: dict[str, str] | None = None) -> Any:
    command = [sys.executable, "-m", "gpuserve.cli", "serve", ref, "--host", "127.0.0.1", "--port", str(port)]
    return started(command, ROOT, ENV | (env or {}))


def ready(url: str, path: str, proc: Any, timeout: float = 90) -> None:
    wait_until(lambda: httpx.get(url + path, timeout=5).status_code == 200, timeout, f"{url}{path}", proc)


@pytest.fixture(scope="module")
def local_url() -> Iterator[str]:
    port = free_port()
    with serve_local(STREAM.ref, port) as proc:
        ready(f"http://127.0.0.1:{port}", "/health", proc)
        yield f"http://127.0.0.1:{port}"


def runpod_api(case: Case, tmp: Path) -> Any:
    """runpod's local API serving the case's built handler: (its port, the process to start)."""
    directory = build_elsewhere(case, "runpod", tmp)
    python = python_of(venv_for(requirement_lines(directory / "requirements.txt")))
    port = free_port()
    command = [python, "handler.py", "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
    return port, started(command, directory, ENV)


@pytest.fixture(scope="module")
def runpod_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port, server = runpod_api(STREAM, tmp_path_factory.mktemp("runpod"))
    with server as proc:
        ready(f"http://127.0.0.1:{port}", "/openapi.json", proc)
        yield f"http://127.0.0.1:{port}"


def test_local_server_predicts_streams_and_names_the_refused_field(local_url: str) -> None:
    with gpuserve.Client(local_url, timeout=30) as client:
        assert client.predict(count=2) == ["alpha ", "beta "]
        assert list(client.stream(count=3)) == ["alpha ", "beta ", "gamma "]
        with pytest.raises(gpuserve.ClientInputError) as refused:
            client.predict(count=9)
    assert refused.value.status == 422 and [f.field for f in refused.value.fields] == ["count"]
    assert "less than or equal to 5" in refused.value.fields[0].message


def test_async_client_predicts_and_streams(local_url: str) -> None:
    async def calls() -> tuple[Any, list[Any]]:
        async with gpuserve.AsyncClient(local_url, timeout=30) as client:
            return await client.predict(count=1), [chunk async for chunk in client.stream(count=2)]

    assert asyncio.run(calls()) == (["alpha "], ["alpha ", "beta "])


def test_a_starting_server_answers_503_and_the_client_retries(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_local(LIFECYCLE.ref, port, {"LIFECYCLE_SETUP_SECONDS": "1.5"}) as proc:
        wait_until(lambda: httpx.get(url + "/health", timeout=5).status_code == 503, 60, "listening", proc)
        caplog.set_level(logging.INFO, logger="gpuserve.client")
        with gpuserve.Client(url, timeout=30, backoff=gpuserve.Backoff(attempts=10, base=0.2)) as client:
            assert client.predict(tag="late") == {"tag": "late", "slept": 0.0}
    retries = [r.getMessage() for r in caplog.records if r.name == "gpuserve.client"]
    assert retries and all("NotReady: model is starting" in m and "HTTP 503" in m for m in retries), retries


def test_runpod_local_api_runsync_and_run_with_status(runpod_url: str) -> None:
    with (
        gpuserve.Client(runpod_url, "runpod", timeout=30) as sync,
        gpuserve.Client(runpod_url, "runpod", timeout=30, poll=True) as polled,
    ):
        assert sync.predict(count=2) == ["alpha ", "beta "]
        assert polled.predict(count=3) == ["alpha ", "beta ", "gamma "]
        assert list(sync.stream(count=2)) == ["alpha ", "beta "]
        with pytest.raises(gpuserve.ClientInputError) as refused:
            sync.predict(count=0)
    assert [f.field for f in refused.value.fields] == ["count"]


def test_cog_server_predicts_streams_and_refuses(tmp_path: Path) -> None:
    with cog_server(STREAM, tmp_path, ENV) as (_proc, http, _dir):
        with gpuserve.Client(str(http.base_url), "cog", timeout=30, backoff=FAST) as client:
            assert client.predict(count=2) == ["alpha ", "beta "]
            assert list(client.stream(count=3)) == ["alpha ", "beta ", "gamma "]
            with pytest.raises(gpuserve.ClientInputError) as refused:
                client.predict(count=9)
    assert [(f.field, f.message) for f in refused.value.fields] == [("count", "9 is greater than the maximum of 5")]


def test_modal_asgi_app_keeps_the_model_error(tmp_path: Path) -> None:
    directory = build_elsewhere(FAULTY, "modal", tmp_path)
    venv = venv_for([*requirement_lines(directory / "requirements.txt"), f"modal=={PINS['modal']}"])
    (tmp_path / "home").mkdir()
    env = offline_env(ENV, tmp_path / "home")
    port = free_port()
    class_name = load_app(FAULTY.ref).spec.class_name
    with started([python_of(venv), str(DRIVER), "serve", class_name, str(port)], directory, env) as proc:
        url = f"http://127.0.0.1:{port}"
        ready(url, "/health", proc)
        with gpuserve.Client(url, "modal", timeout=30) as client:
            assert client.predict() == {"calls": 1}
            with pytest.raises(gpuserve.PredictError) as failed:
                client.predict(fail=True, message="bad weights")
            assert list(client.stream()) == [{"calls": 3}]  # a model that does not stream: one chunk
    assert (failed.value.type, failed.value.message, failed.value.status) == ("ValueError", "bad weights", 500)


def test_failover_moves_on_when_the_first_endpoint_drains(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A gpuserve server holding a slow request is sent SIGTERM: it drains (503), and RunPod answers."""
    log = tmp_path / "lifecycle.log"
    port = free_port()
    rp_port, backup = runpod_api(Case("drainable", DRAINABLE, {}, None, {}, ""), tmp_path)
    with serve_local(DRAINABLE, port, {"LIFECYCLE_LOG": str(log)}) as proc, backup as rp_proc:
        first = f"http://127.0.0.1:{port}"
        ready(first, "/health", proc)
        ready(f"http://127.0.0.1:{rp_port}", "/openapi.json", rp_proc)
        held: dict[str, httpx.Response] = {}
        slow = threading.Thread(
            target=lambda: held.update(r=httpx.post(f"{first}/predict", json={"input": {"seconds": 2}}, timeout=30))
        )
        slow.start()
        wait_until(lambda: log.exists() and "predict" in log.read_text(), 20, "the slow predict running")
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: httpx.get(f"{first}/health", timeout=5).status_code == 503, 10, "draining")
        caplog.set_level(logging.INFO, logger="gpuserve.client")
        local = gpuserve.Client(first, timeout=30)
        runpod = gpuserve.Client(f"http://127.0.0.1:{rp_port}", "runpod", timeout=30)
        failover = gpuserve.Failover([local, runpod])
        assert failover.predict(tag="moved") == {"tag": "moved"}
        assert failover.last_answered is runpod
        slow.join(30)
        failover.close()
    assert held["r"].status_code == 200  # the held request still finished on the draining server
    moved = [r.getMessage() for r in caplog.records if "trying the next endpoint" in r.getMessage()]
    assert len(moved) == 1 and "model is draining" in moved[0] and first in moved[0], moved


# --- stand-ins for the hosted APIs that have no local runtime -----------------------------------------------

RP_KEY, R8_TOKEN = "rp_test_key_0123456789", "r8_test_token_0123456789"


class StandIn:
    """Replicate's predictions API and RunPod's /v2 API, as their docs describe them, for a toy model:
    {"text": str, "seconds": float, "fail": bool} -> {"upper": TEXT}; its stream is the text's words."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.canceled: list[str] = []
        self.throttle = 0  # answer this many create requests 429 first
        self.app = FastAPI()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._routes()

    def __enter__(self) -> StandIn:
        thread = threading.Thread(target=self.server.run, daemon=True)
        thread.start()
        wait_until(lambda: self.server.started, 10, "stand-in")
        self.thread = thread
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def job(self, inputs: dict[str, Any]) -> str:
        """A new job that finishes `seconds` from now; its id."""
        job_id = uuid.uuid4().hex[:12]
        self.jobs[job_id] = {"input": inputs, "done_at": time.monotonic() + float(inputs.get("seconds", 0)), "read": 0}
        return job_id

    def finished(self, job_id: str) -> bool:
        return bool(time.monotonic() >= self.jobs[job_id]["done_at"])

    def _routes(self) -> None:
        app = self.app

        def authorized(request: Request, token: str) -> bool:
            return request.headers.get("authorization") == f"Bearer {token}"

        # Replicate ------------------------------------------------------------------------------------------
        def prediction(job_id: str, stream: bool = False) -> dict[str, Any]:
            job = self.jobs[job_id]
            urls = {
                "get": f"{self.base}/v1/predictions/{job_id}",
                "cancel": f"{self.base}/v1/predictions/{job_id}/cancel",
            }
            if stream:
                urls["stream"] = f"{self.base}/v1/stream/{job_id}"
            body: dict[str, Any] = {"id": job_id, "status": "processing", "input": job["input"], "urls": urls}
            if job_id in self.canceled:
                return body | {"status": "canceled"}
            if self.finished(job_id):
                if job["input"].get("fail"):
                    return body | {"status": "failed", "error": "ValueError: bad weights"}
                return body | {"status": "succeeded", "output": {"upper": job["input"]["text"].upper()}}
            return body

        @app.post("/v1/models/{owner}/{name}/predictions")
        async def create(request: Request, owner: str, name: str) -> Response:
            if not authorized(request, R8_TOKEN):
                return JSONResponse({"title": "Unauthenticated", "detail": "Invalid token.", "status": 401}, 401)
            if self.throttle:
                self.throttle -= 1
                detail = {"detail": "Request was throttled. Expected available in 1 second.", "status": 429}
                return JSONResponse(detail, 429, headers={"Retry-After": "1"})
            body = await request.json()
            if not isinstance(body["input"].get("text"), str):
                message = "Invalid type. Expected: string, given: integer"
                field = {"type": "invalid_type", "field": "input.text", "description": message}
                problem = {"title": "Input validation failed", "status": 422, "invalid_fields": [field]}
                return JSONResponse(problem | {"detail": f"- input.text: {message}\n"}, 422)
            job_id = self.job(body["input"])
            if "wait" in request.headers.get("prefer", "") and not body.get("stream"):
                await asyncio.sleep(
                    min(1.0, float(body["input"].get("seconds", 0)))
                )  # holds, then may answer unfinished
            return JSONResponse(prediction(job_id, stream=bool(body.get("stream"))), 201)

        @app.get("/v1/predictions/{job_id}")
        async def get(request: Request, job_id: str) -> Response:
            return JSONResponse(prediction(job_id))

        @app.post("/v1/predictions/{job_id}/cancel")
        async def cancel(request: Request, job_id: str) -> Response:
            self.canceled.append(job_id)
            return JSONResponse(prediction(job_id))

        @app.get("/v1/stream/{job_id}")
        async def stream(request: Request, job_id: str) -> Response:
            assert request.headers["accept"] == "text/event-stream" and authorized(request, R8_TOKEN)

            async def events() -> AsyncIterator[bytes]:
                for index, word in enumerate(self.jobs[job_id]["input"]["text"].split()):
                    yield f"event: output\nid: {index}\ndata: {word}\n\n".encode()
                yield b"event: done\nid: end\ndata: {}\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        # RunPod hosted ---------------------------------------------------------------------------------------
        def job_state(job_id: str) -> dict[str, Any]:
            job = self.jobs[job_id]
            if job_id in self.canceled:
                return {"id": job_id, "status": "CANCELLED"}
            if not self.finished(job_id):
                return {"id": job_id, "status": "IN_PROGRESS"}
            if job["input"].get("fail"):
                return {"id": job_id, "status": "FAILED", "error": "ValueError: bad weights"}
            return {"id": job_id, "status": "COMPLETED", "output": {"upper": job["input"]["text"].upper()}}

        @app.post("/v2/{endpoint}/{operation}")
        async def submit(request: Request, endpoint: str, operation: str) -> Response:
            if not authorized(request, RP_KEY):
                return Response("Unauthorized", 401)
            body = await request.json()
            job_id = self.job(body["input"])
            if endpoint == "slow":
                await asyncio.sleep(1.5)
            if operation == "run":
                return JSONResponse({"id": job_id, "status": "IN_QUEUE"})
            return JSONResponse(job_state(job_id))  # runsync: unfinished jobs answer IN_PROGRESS, to be polled

        @app.get("/v2/{endpoint}/status/{job_id}")
        async def status(request: Request, endpoint: str, job_id: str) -> Response:
            return JSONResponse(job_state(job_id)) if authorized(request, RP_KEY) else Response("Unauthorized", 401)

        @app.get("/v2/{endpoint}/stream/{job_id}")
        async def stream_part(request: Request, endpoint: str, job_id: str) -> Response:
            job = self.jobs[job_id]
            words = job["input"]["text"].split()
            part, job["read"] = words[job["read"] : job["read"] + 1], min(len(words), job["read"] + 1)
            state = "COMPLETED" if job["read"] == len(words) else "IN_PROGRESS"
            return JSONResponse({"id": job_id, "status": state, "stream": [{"output": w} for w in part]})

        @app.post("/v2/{endpoint}/cancel/{job_id}")
        async def cancel_job(request: Request, endpoint: str, job_id: str) -> Response:
            self.canceled.append(job_id)
            return JSONResponse({"id": job_id, "status": "CANCELLED"})


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandIn]:
    with StandIn() as server:
        yield server


def test_replicate_waits_polls_streams_and_retries_a_throttle(
    stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", R8_TOKEN)
    url = f"{stand_in.base}/v1/models/acme/upper/predictions"
    with gpuserve.Client(url, "replicate", timeout=20, poll_interval=0.05) as client:
        assert client.predict(text="hi there") == {"upper": "HI THERE"}  # answered within Prefer: wait
        assert client.predict(text="later", seconds=1.5) == {"upper": "LATER"}  # unfinished after the wait: polled
        assert list(client.stream(text="one two three")) == ["one", "two", "three"]
        stand_in.throttle = 1
        started_at = time.monotonic()
        assert client.predict(text="again") == {"upper": "AGAIN"}
        assert time.monotonic() - started_at >= 1.0  # Retry-After: 1 was honoured
        with pytest.raises(gpuserve.PredictError) as failed:
            client.predict(text="x", fail=True)
        with pytest.raises(gpuserve.ClientInputError) as refused:
            client.predict(text=3)
    assert (failed.value.type, failed.value.message) == ("ValueError", "bad weights")
    assert [(f.field, f.type) for f in refused.value.fields] == [("text", "invalid_type")]


def test_replicate_cancels_what_outlasts_the_timeout_and_names_the_token(
    stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", R8_TOKEN)
    url = f"{stand_in.base}/v1/models/acme/upper/predictions"
    with gpuserve.Client(url, "replicate", timeout=1.5, poll=True, poll_interval=0.1) as client:
        with pytest.raises(gpuserve.ClientTimeout, match="timeout=1.5s"):
            client.predict(text="slow", seconds=30)
    assert len(stand_in.canceled) == 1
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_wrong")
    with pytest.raises(gpuserve.AuthError, match="REPLICATE_API_TOKEN") as refused:
        gpuserve.Client(url, "replicate").predict(text="x")
    assert refused.value.status == 401


def test_runpod_hosted_runsync_polls_streams_and_needs_the_key(
    stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{stand_in.base}/v2/abc123"
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    with pytest.raises(gpuserve.AuthError, match="RUNPOD_API_KEY is not set"):
        gpuserve.Client(url, "runpod")
    monkeypatch.setenv("RUNPOD_API_KEY", RP_KEY)
    with gpuserve.Client(url, "runpod", timeout=20, poll_interval=0.05) as client:
        assert client.predict(text="now") == {"upper": "NOW"}
        assert client.predict(text="soon", seconds=0.3) == {"upper": "SOON"}  # runsync IN_PROGRESS, then /status
        assert list(client.stream(text="a b c")) == ["a", "b", "c"]
        with pytest.raises(gpuserve.PredictError, match="bad weights"):
            client.predict(text="x", fail=True)
    with gpuserve.Client(url, "runpod", token="rp_wrong", backoff=FAST) as wrong:
        with pytest.raises(gpuserve.AuthError, match="RUNPOD_API_KEY"):
            wrong.predict(text="x")


def test_failover_moves_on_past_the_latency_budget(stand_in: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", RP_KEY)
    slow = gpuserve.Client(f"{stand_in.base}/v2/slow", "runpod", timeout=20)
    quick = gpuserve.Client(f"{stand_in.base}/v2/quick", "runpod", timeout=20)
    failover = gpuserve.Failover([slow, quick], latency_budget=0.5)
    started_at = time.monotonic()
    assert failover.predict(text="fast") == {"upper": "FAST"}
    assert failover.last_answered is quick and time.monotonic() - started_at < 2.5
    with pytest.raises(gpuserve.PredictError):  # a model error would fail everywhere: no moving on
        failover.predict(text="x", fail=True)
    failover.close()

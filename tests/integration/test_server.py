"""The local server, run for real: `gpuserve serve` in a subprocess, uvicorn on a loopback port."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apps import ASYNC, FAULTY, HELLO, LIFECYCLE, ROOT, STREAM
from tests.proc import free_port, output_of, started, stop, wait_until


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], base: str) -> None:
        self.proc = proc
        self.client = httpx.Client(base_url=base, timeout=30)


@contextmanager
def serve(ref: str, env: dict[str, str] | None = None, wait_ready: bool = True) -> Iterator[Served]:
    port = free_port()
    command = [sys.executable, "-m", "gpuserve.cli", "serve", ref, "--host", "127.0.0.1", "--port", str(port)]
    with started(command, ROOT, env) as proc:
        served = Served(proc, f"http://127.0.0.1:{port}")
        wait_until(
            lambda: served.client.get("/health").status_code in ((200,) if wait_ready else (200, 503)),
            30,
            "health",
            proc,
        )
        try:
            yield served
        finally:
            served.client.close()


@pytest.fixture(scope="module")
def hello() -> Iterator[Served]:
    with serve(HELLO.ref) as served:
        yield served


def test_health_and_predict(hello: Served) -> None:
    health = hello.client.get("/health").json()
    assert (health["status"], health["model"]) == ("ready", "hello")
    assert set(health["phases"]) == {"fetch", "load", "ready"} and health["phases"]["fetch"]["bytes"] == 0
    response = hello.client.post("/predict", json={"input": HELLO.good}, headers={"X-Request-ID": "req-1"})
    body = response.json()
    assert response.status_code == 200
    assert body["output"] == HELLO.expected and body["id"] == "req-1"
    assert set(body["timing"]) == {"queue_ms", "predict_ms"}


def test_invalid_input_is_422_naming_field_and_rule(hello: Served) -> None:
    response = hello.client.post("/predict", json={"input": {"name": "", "language": "de"}})
    assert response.status_code == 422
    details = {tuple(d["loc"]): (d["type"], d["msg"]) for d in response.json()["detail"]}
    assert details == {
        ("body", "input", "name"): ("string_too_short", "String should have at least 1 character"),
        ("body", "input", "language"): ("literal_error", "Input should be 'en', 'fr' or 'es'"),
    }


def test_oversized_body_is_413(hello: Served) -> None:
    response = hello.client.post(
        "/predict",
        content=b'{"input": {"name": "' + b"x" * (11 * 1024 * 1024) + b'"}}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "PayloadTooLarge"


def test_openapi_documents_the_real_schemas(hello: Served) -> None:
    schema = hello.client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert components["HelloInput"]["properties"]["name"] == {
        "type": "string",
        "maxLength": 64,
        "minLength": 1,
        "title": "Name",
        "description": "Who to greet",
    }
    assert components["HelloInput"]["properties"]["language"]["enum"] == ["en", "fr", "es"]
    assert components["PredictResponse"]["properties"]["output"]["additionalProperties"] == {"type": "string"}
    assert "text/event-stream" in schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]
    docs = hello.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_exceptions_are_500_and_serving_goes_on() -> None:
    with serve(FAULTY.ref) as served:
        failed = served.client.post("/predict", json={"input": {"fail": True, "message": "bad weights"}})
        assert failed.status_code == 500
        assert failed.json()["error"] == {"type": "ValueError", "message": "bad weights"}
        assert served.client.post("/predict", json={"input": {}}).json()["output"] == {"calls": 2}


def sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines.get("event", "message"), json.loads(lines["data"])))
    return events


def test_streaming_model_sends_events_then_done() -> None:
    with serve(STREAM.ref) as served:
        with served.client.stream(
            "POST", "/predict", json={"input": {"count": 3}}, headers={"Accept": "text/event-stream"}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            text = "".join(response.iter_text())
        events = sse_events(text)
        assert events[:3] == [("message", "alpha "), ("message", "beta "), ("message", "gamma ")]
        assert events[3][0] == "done" and events[3][1]["chunks"] == 3
        plain = served.client.post("/predict", json={"input": {"count": 2}})
        assert plain.json()["output"] == ["alpha ", "beta "]


def test_async_model() -> None:
    with serve(ASYNC.ref) as served:
        assert served.client.post("/predict", json={"input": ASYNC.good}).json()["output"] == ASYNC.expected


def test_concurrency_limit_queue_and_starting_state(tmp_path: Path) -> None:
    env = {"LIFECYCLE_LOG": str(tmp_path / "log"), "LIFECYCLE_SETUP_SECONDS": "1.5", "GPUSERVE_MAX_QUEUE": "1"}
    with serve(LIFECYCLE.ref, env, wait_ready=False) as served:
        first = served.client.get("/health")
        assert (first.status_code, first.json()["status"]) == (503, "starting")
        early = served.client.post("/predict", json={"input": {}})
        assert early.status_code == 503 and early.json()["error"]["type"] == "NotReady"
        wait_until(lambda: served.client.get("/health").status_code == 200, 30, "ready")
        # concurrency=2: two sleepers run together, a third waits in the queue (max 1), a fourth is refused.
        results: dict[str, httpx.Response] = {}

        def call(tag: str) -> None:
            with httpx.Client(base_url=str(served.client.base_url), timeout=30) as client:
                results[tag] = client.post("/predict", json={"input": {"seconds": 1.0, "tag": tag}})

        threads = [threading.Thread(target=call, args=(t,)) for t in ("a", "b")]
        started_at = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(0.3)
        third = threading.Thread(target=call, args=("c",))
        third.start()
        time.sleep(0.3)
        refused = served.client.post("/predict", json={"input": {"seconds": 0, "tag": "d"}})
        for t in [*threads, third]:
            t.join(30)
        elapsed = time.monotonic() - started_at
        assert refused.status_code == 503 and refused.json()["error"]["type"] == "Busy"
        assert all(results[t].status_code == 200 for t in "abc")
        assert results["a"].json()["timing"]["queue_ms"] < 200 and results["b"].json()["timing"]["queue_ms"] < 200
        assert results["c"].json()["timing"]["queue_ms"] > 300  # waited for a slot
        assert 1.9 < elapsed < 4, elapsed  # two rounds of one second, not three


def test_sigterm_drains_in_flight_request_then_shuts_down(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with serve(LIFECYCLE.ref, {"LIFECYCLE_LOG": str(log)}) as served:
        result: dict[str, httpx.Response] = {}

        def late_request() -> None:
            result["r"] = served.client.post("/predict", json={"input": {"seconds": 1.5, "tag": "late"}})

        worker = threading.Thread(target=late_request)
        worker.start()
        time.sleep(0.4)
        served.proc.send_signal(signal.SIGTERM)
        worker.join(30)
        code = stop(served.proc)
        assert result["r"].status_code == 200 and result["r"].json()["output"]["tag"] == "late"
        assert code in (0, -signal.SIGTERM), output_of(served.proc)  # uvicorn >= 0.29 re-raises the signal once drained
        assert [line.split()[0] for line in log.read_text().splitlines()] == ["setup", "shutdown"]


def _queue_depth(served: Served) -> float:
    line = next(ln for ln in served.client.get("/metrics").text.splitlines() if ln.startswith("gpuserve_queue_depth "))
    return float(line.split()[1])


def test_a_client_that_hangs_up_while_queued_leaves_the_queue_and_its_predict_never_runs(tmp_path: Path) -> None:
    log = tmp_path / "log"
    single = f"{ROOT}/tests/models/single.py:Single"  # concurrency=1; predict sleeps `seconds`, logs start:TAG
    with serve(single, {"LIFECYCLE_LOG": str(log)}) as served:
        first: dict[str, httpx.Response] = {}

        def hold_the_slot() -> None:
            first["a"] = served.client.post("/predict", json={"input": {"seconds": 3, "tag": "a"}})

        holder = threading.Thread(target=hold_the_slot)
        holder.start()
        wait_until(lambda: log.exists() and "start:a" in log.read_text(), 10, "the first predict running")
        body = json.dumps({"input": {"seconds": 0, "tag": "b"}}).encode()
        head = f"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
        with socket.create_connection(("127.0.0.1", int(str(served.client.base_url).rsplit(":", 1)[1]))) as sock:
            sock.sendall(head.encode() + b"\r\n\r\n" + body)
            wait_until(lambda: _queue_depth(served) == 1, 10, "the second request queued")
        wait_until(lambda: _queue_depth(served) == 0, 2, "the hung-up request out of the queue")
        assert holder.is_alive()  # it left the queue while the slot was still taken, not when the slot came
        holder.join(30)
        after = served.client.post("/predict", json={"input": {"seconds": 0, "tag": "c"}})
        stop(served.proc)
        printed = output_of(served.proc)
    assert first["a"].status_code == 200 and after.status_code == 200
    started_tags = [ln.split()[0] for ln in log.read_text().splitlines() if ln.startswith("start:")]
    assert started_tags == ["start:a", "start:c"]
    assert '"status":499' in printed  # the request log line of the client that hung up

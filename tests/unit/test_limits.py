"""The server's front door in-process: refusals with one documented answer each, auth, the request log, metrics."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

import gpuserve
from gpuserve.runtime import ModelHost
from gpuserve.runtime.auth import AuthConfigError, Tokens
from gpuserve.runtime.limits import InForce
from gpuserve.runtime.logs import RequestFormatter
from gpuserve.runtime.server import create_app
from tests.apps import HELLO, ROOT, STREAM

TOKEN = "t0ken-for-the-tests-0123456789"
SLOW = f"{ROOT}/tests/models/slow.py:Slow"
JSON = {"content-type": "application/json"}


def client(ref: str, env: dict[str, str] | None = None, tracer: Any = None) -> TestClient:
    host = ModelHost.from_ref(ref)
    host.setup()
    return TestClient(create_app(host, env=env or {}, tracer=tracer))


@pytest.fixture
def hello() -> Iterator[TestClient]:
    with client(HELLO.ref) as served:
        yield served


def test_false_for_a_number_is_422_naming_the_field() -> None:
    response = client(SLOW).post("/predict", json={"input": {"seconds": False}})
    assert response.status_code == 422
    assert [d["loc"] for d in response.json()["detail"]] == [["body", "input", "seconds"]]


def test_infinite_number_is_422_naming_the_field() -> None:
    response = client(SLOW).post("/predict", content=b'{"input": {"seconds": 1e999}}', headers=JSON)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "input", "seconds"]


def test_whole_number_float_is_an_integer() -> None:
    response = client(STREAM.ref).post("/predict", json={"input": {"count": 2.0}})
    assert (response.status_code, response.json()["output"]) == (200, ["alpha ", "beta "])


def test_body_not_utf8_is_400_and_documented(hello: TestClient) -> None:
    response = hello.post("/predict", content=b'{"input": {"name": "\xff"}}', headers=JSON)
    assert (response.status_code, response.json()["error"]["type"]) == (400, "InvalidJSON")
    assert "400" in hello.get("/openapi.json").json()["paths"]["/predict"]["post"]["responses"]


def test_wrong_content_type_is_415(hello: TestClient) -> None:
    response = hello.post(
        "/predict", content=b"name=Ada", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert (response.status_code, response.json()["error"]["type"]) == (415, "UnsupportedMediaType")


def test_body_over_the_spec_limit_is_413() -> None:
    @gpuserve.model(limits=gpuserve.Limits(max_body_bytes=2048))
    class Small:
        def predict(self, text: str) -> str:
            return text

    with TestClient(create_app(ModelHost(Small), env={})) as served:
        response = served.post("/predict", json={"input": {"text": "x" * 4096}})
    assert (response.status_code, response.json()["error"]["type"]) == (413, "PayloadTooLarge")


def test_environment_overrides_the_spec_limits() -> None:
    spec = ModelHost.from_ref(HELLO.ref).spec
    limits = InForce.of(spec, {"GPUSERVE_MAX_BODY_BYTES": "5000", "GPUSERVE_MAX_QUEUE": "3"})
    assert (limits.max_body_bytes, limits.max_queue) == (5000, 3)
    assert InForce.of(spec, {}).max_queue == 64 * spec.concurrency
    with pytest.raises(ValueError, match="GPUSERVE_MAX_QUEUE='many' is not a whole number"):
        InForce.of(spec, {"GPUSERVE_MAX_QUEUE": "many"})


def test_request_id_is_echoed_and_unsafe_ones_replaced(hello: TestClient) -> None:
    kept = hello.post("/predict", json={"input": HELLO.good}, headers={"X-Request-ID": "abc-1"})
    assert kept.headers["x-request-id"] == "abc-1" and kept.json()["id"] == "abc-1"
    replaced = hello.post("/predict", json={"input": {}}, headers={"X-Request-ID": 'a b"c'})
    assert replaced.headers["x-request-id"] != 'a b"c' and replaced.json()["id"] == replaced.headers["x-request-id"]


def test_without_a_valid_token_401_and_health_stays_open() -> None:
    served = client(HELLO.ref, {"GPUSERVE_AUTH_TOKENS": f"old-token-0123456789abc, {TOKEN}"})
    assert served.post("/predict", json={"input": HELLO.good}).status_code == 401
    wrong = served.post("/predict", json={"input": HELLO.good}, headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.headers["www-authenticate"]) == (401, 'Bearer realm="gpuserve"')
    assert served.get("/metrics").status_code == 401
    assert served.get("/health").status_code == 200
    good = served.post("/predict", json={"input": HELLO.good}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert good.status_code == 200


def test_short_tokens_refuse_to_start_without_echoing_them() -> None:
    with pytest.raises(AuthConfigError) as info:
        Tokens.from_env({"GPUSERVE_AUTH_TOKENS": "short"})
    assert "short" not in str(info.value).replace("shorter", "")


def test_metrics_count_a_known_load(hello: TestClient) -> None:
    for _ in range(3):
        assert hello.post("/predict", json={"input": HELLO.good}).status_code == 200
    hello.post("/predict", json={"input": HELLO.bad})
    families = {f.name: f for f in text_string_to_metric_families(hello.get("/metrics").text)}
    counts = {
        (s.labels["path"], s.labels["status"]): s.value
        for s in families["gpuserve_requests"].samples
        if s.name == "gpuserve_requests_total"
    }
    assert counts[("/predict", "200")] == 3 and counts[("/predict", "422")] == 1
    queue = {s.name: s.value for s in families["gpuserve_queue_wait_seconds"].samples}
    assert queue["gpuserve_queue_wait_seconds_count"] == 3
    batch = {s.name: s.value for s in families["gpuserve_batch_size"].samples}
    assert batch["gpuserve_batch_size_sum"] == 3
    for name in ("gpuserve_requests_in_flight", "gpuserve_queue_depth", "gpuserve_ready", "gpuserve_setup_seconds"):
        assert name in families


def test_request_log_is_one_json_line_without_headers() -> None:
    record = logging.LogRecord("gpuserve.requests", logging.INFO, "", 0, "request", None, None)
    record.fields = {"event": "request", "request_id": "r1", "status": 200, "queue_ms": 0.1, "batch_size": 1}
    line = json.loads(RequestFormatter(as_json=True).format(record))
    assert {k: line[k] for k in ("request_id", "status", "batch_size")} == {
        "request_id": "r1",
        "status": 200,
        "batch_size": 1,
    }
    assert RequestFormatter(as_json=False).format(record).startswith("INFO gpuserve: event=request request_id=r1")


def test_request_log_names_id_status_and_never_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RequestFormatter(as_json=True))
    logger = logging.getLogger("gpuserve.requests")
    logger.addHandler(handler)
    level = logger.level
    try:
        served = client(HELLO.ref, {"GPUSERVE_AUTH_TOKENS": TOKEN})
        logger.setLevel(logging.INFO)  # as `gpuserve serve` sets it; pytest's root level is WARNING
        served.post(
            "/predict", json={"input": HELLO.good}, headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": "r-9"}
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(x["request_id"], x["status"], x["model"], x["batch_size"]) for x in lines] == [("r-9", 200, "hello", 1)]
    assert TOKEN not in stream.getvalue() + capsys.readouterr().err


def test_traces_a_request_when_a_tracer_is_given() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    served = client(HELLO.ref, tracer=provider.get_tracer("test"))
    served.post("/predict", json={"input": HELLO.good}, headers={"X-Request-ID": "traced"})
    (span,) = exporter.get_finished_spans()
    assert span.name == "POST /predict" and span.attributes is not None
    assert (span.attributes["gpuserve.request_id"], span.attributes["http.response.status_code"]) == ("traced", 200)

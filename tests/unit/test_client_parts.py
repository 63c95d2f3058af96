"""gpuserve.Client's rules without a server: backoff, Retry-After, error mapping per platform, failover order.

Answers come from httpx.MockTransport, scripted as each platform answers (the integration tests check the
real runtimes); the requests the client sent are recorded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import gpuserve
from gpuserve.client.backoff import Backoff, retry_after_seconds
from gpuserve.client.base import error_from_text
from gpuserve.client.runpod import job_error

NO_WAIT = Backoff(attempts=4, base=0.001, cap=0.01)
Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]


class Script:
    """Answers requests in order (the last one again when they run out) and keeps what was sent."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        status, body, *rest = self.answers[min(len(self.sent), len(self.answers)) - 1]
        headers = rest[0] if rest else {}
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    def client(self, target: str = "local", url: str = "http://model.test", **options: Any) -> gpuserve.Client:
        options.setdefault("backoff", NO_WAIT)
        return gpuserve.Client(url, target, transport=httpx.MockTransport(self), **options)  # type: ignore[arg-type]


def error(kind: str, message: str) -> dict[str, Any]:
    return {"id": "r1", "error": {"type": kind, "message": message}}


# backoff -------------------------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_spread_by_the_jitter() -> None:
    backoff = Backoff(base=0.5, cap=2.0, jitter=0.2)
    assert [backoff.delay(n, rand=lambda: 0.5) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.0]
    assert backoff.delay(2, rand=lambda: 0.0) == pytest.approx(0.8)
    assert backoff.delay(2, rand=lambda: 1.0) == pytest.approx(1.2)


def test_backoff_never_waits_less_than_retry_after() -> None:
    backoff = Backoff(base=0.5, cap=2.0)
    assert backoff.delay(1, retry_after=5.0, rand=lambda: 0.5) == 5.0
    assert backoff.delay(3, retry_after=0.1, rand=lambda: 0.5) == 2.0


def test_backoff_refuses_settings_naming_the_field_and_what_is_allowed() -> None:
    with pytest.raises(
        gpuserve.ClientConfigError, match=r"Backoff.attempts=0 is not allowed. Allowed: an integer >= 1"
    ):
        Backoff(attempts=0)
    with pytest.raises(gpuserve.ClientConfigError, match=r"Backoff.cap=0.1 .* seconds >= base \(0.5\)"):
        Backoff(base=0.5, cap=0.1)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(later, now=now.timestamp) == 30.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


# arguments -------------------------------------------------------------------------------------------------------


def test_an_unknown_target_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(gpuserve.ClientConfigError) as refused:
        gpuserve.Client("http://x.test", "lambda")  # type: ignore[arg-type]
    assert "target='lambda'" in str(refused.value)
    assert "Allowed: local, docker, modal, runpod, cog, replicate" in str(refused.value)


def test_a_url_that_is_not_http_is_refused_with_its_forms() -> None:
    with pytest.raises(gpuserve.ClientConfigError, match=r"url='127.0.0.1:8000' is not an http\(s\) URL"):
        gpuserve.Client("127.0.0.1:8000")
    with pytest.raises(gpuserve.ClientConfigError, match="timeout=0 is not allowed"):
        gpuserve.Client("http://x.test", timeout=0)


def test_replicate_refs_become_the_documented_prediction_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_x")
    version = "a" * 64
    assert (
        gpuserve.Client("acme/upper", "replicate").url == "https://api.replicate.com/v1/models/acme/upper/predictions"
    )
    by_version = gpuserve.Client(f"acme/upper:{version}", "replicate")
    assert by_version.url == "https://api.replicate.com/v1/predictions"
    deployment = "https://api.replicate.com/v1/deployments/acme/upper/predictions"
    assert gpuserve.Client(deployment, "replicate").url == deployment
    with pytest.raises(gpuserve.ClientConfigError, match=r"needs a version.*\?version=VERSION"):
        gpuserve.Client("https://api.replicate.com/v1/predictions", "replicate")
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    with pytest.raises(gpuserve.AuthError, match="REPLICATE_API_TOKEN is not set"):
        gpuserve.Client("acme/upper", "replicate")


def test_replicate_sends_the_version_and_prefer_wait() -> None:
    version = "b" * 64
    script = Script((201, {"id": "p1", "status": "succeeded", "output": 3, "urls": {}}))
    assert script.client("replicate", f"acme/upper:{version}", token="r8_x").predict(n=1) == 3
    sent = script.sent[0]
    assert json.loads(sent.content) == {"input": {"n": 1}, "version": version}
    assert (sent.headers["prefer"], sent.headers["authorization"]) == ("wait", "Bearer r8_x")


def test_runpod_bare_ids_are_hosted_and_local_urls_read_status_by_post(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rp_x")
    assert gpuserve.Client("abc123xyz", "runpod").url == "https://api.runpod.ai/v2/abc123xyz"
    assert gpuserve.Client("https://api.runpod.ai/v2/abc123xyz/runsync", "runpod").url.endswith("/v2/abc123xyz")
    script = Script(
        (200, {"id": "j1", "status": "IN_PROGRESS"}), (200, {"id": "j1", "status": "COMPLETED", "output": 1})
    )
    assert script.client("runpod", "http://127.0.0.1:8000", poll=True, poll_interval=0.01).predict() == 1
    assert [(r.method, r.url.path) for r in script.sent] == [("POST", "/run"), ("POST", "/status/j1")]


# errors and retries ----------------------------------------------------------------------------------------------


def test_a_refused_input_keeps_its_fields_and_is_not_retried() -> None:
    detail = [{"loc": ["body", "input", "name"], "msg": "String should have at least 1 character", "type": "too_short"}]
    script = Script((422, error("InvalidInput", "body.input.name: ...") | {"detail": detail}))
    with pytest.raises(gpuserve.ClientInputError) as refused:
        script.client().predict(name="")
    assert [(f.field, f.message) for f in refused.value.fields] == [("name", detail[0]["msg"])]
    assert len(script.sent) == 1


def test_a_model_error_keeps_its_type_and_message_and_is_not_retried() -> None:
    script = Script((500, error("ValueError", "bad weights")))
    with pytest.raises(gpuserve.PredictError) as failed:
        script.client(name="primary").predict()
    assert (failed.value.type, failed.value.message, failed.value.status) == ("ValueError", "bad weights", 500)
    assert str(failed.value) == "ValueError: bad weights (primary, HTTP 500)"
    assert len(script.sent) == 1


def test_busy_and_proxy_errors_are_retried_until_an_answer() -> None:
    script = Script(
        (503, error("Busy", "queue is full"), {"Retry-After": "0"}),
        (502, "<html>Bad Gateway</html>"),
        (200, {"id": "r", "output": {"ok": True}}),
    )
    assert script.client().predict() == {"ok": True}
    assert len(script.sent) == 3


def test_retries_stop_after_the_attempts_with_the_last_error() -> None:
    script = Script((503, error("NotReady", "model is draining"), {"Retry-After": "0"}))
    with pytest.raises(gpuserve.Unavailable, match="model is draining") as unavailable:
        script.client(backoff=Backoff(attempts=3, base=0.001)).predict()
    assert len(script.sent) == 3 and unavailable.value.retry_after == 0.0


def test_a_server_timeout_is_a_client_timeout_and_not_retried() -> None:
    script = Script((504, error("Timeout", "predict ran past timeout=1s")))
    with pytest.raises(gpuserve.ClientTimeout, match="predict ran past timeout=1s"):
        script.client().predict()
    assert len(script.sent) == 1


def test_refused_credentials_name_the_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Script((401, error("Unauthorized", "send the header")))
    with pytest.raises(gpuserve.AuthError, match="set GPUSERVE_AUTH_TOKEN"):
        script.client().predict()
    with pytest.raises(gpuserve.AuthError, match="MODAL_KEY and MODAL_SECRET"):
        script.client("modal").predict()


def test_modal_proxy_tokens_and_the_bearer_token_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODAL_KEY", "wk-1")
    monkeypatch.setenv("MODAL_SECRET", "ws-1")
    monkeypatch.setenv("GPUSERVE_AUTH_TOKEN", "t" * 20)
    script = Script((200, {"id": "r", "output": 1}))
    script.client("modal").predict()
    headers = script.sent[0].headers
    assert (headers["modal-key"], headers["modal-secret"], headers["authorization"]) == (
        "wk-1",
        "ws-1",
        "Bearer " + "t" * 20,
    )


def test_platform_error_texts_read_back_as_the_error_they_mean() -> None:
    cog = error_from_text("Prediction failed: Prediction failed: ValueError: bad weights")
    assert isinstance(cog, gpuserve.PredictError) and (cog.type, cog.message) == ("ValueError", "bad weights")
    raised = job_error(json.dumps({"error_type": "<class 'KeyError'>", "error_message": "'x'", "error_traceback": ""}))
    assert isinstance(raised, gpuserve.PredictError) and (raised.type, raised.message) == ("KeyError", "'x'")
    invalid = job_error("invalid input: input.count: Input should be >= 1; input.mode: Input should be 'a' or 'b'")
    assert isinstance(invalid, gpuserve.ClientInputError)
    assert [(f.field, f.message) for f in invalid.fields] == [
        ("count", "Input should be >= 1"),
        ("mode", "Input should be 'a' or 'b'"),
    ]
    assert isinstance(job_error("Interrupted: the worker is shutting down; retry it"), gpuserve.Unavailable)
    assert isinstance(error_from_text("torch.cuda.OutOfMemoryError: CUDA out of memory"), gpuserve.PredictError)


def test_a_stream_that_breaks_after_a_chunk_is_not_retried() -> None:
    script = Script((200, 'data: "alpha "\n\n', {"content-type": "text/event-stream"}))
    chunks: list[Any] = []
    with pytest.raises(gpuserve.Unavailable, match="ended before its `done` event"):
        for chunk in script.client().stream():
            chunks.append(chunk)
    assert chunks == ["alpha "] and len(script.sent) == 1


def test_async_client_retries_the_same_way() -> None:
    script = Script((503, error("Busy", "full"), {"Retry-After": "0"}), (200, {"id": "r", "output": "ok"}))

    async def call() -> Any:
        client = gpuserve.AsyncClient("http://model.test", transport=httpx.MockTransport(script), backoff=NO_WAIT)
        async with client:
            return await client.predict()

    assert asyncio.run(call()) == "ok" and len(script.sent) == 2


def test_paths_and_bytes_are_sent_as_data_uris(tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(b"\x89PNG")
    script = Script((200, {"id": "r", "output": None}))
    script.client().predict({"odd-name": 1}, image=image, raw=b"ab")
    assert json.loads(script.sent[0].content)["input"] == {
        "odd-name": 1,
        "image": "data:image/png;base64,iVBORw==",
        "raw": "data:application/octet-stream;base64,YWI=",
    }


# failover --------------------------------------------------------------------------------------------------------


def pair(first: Script, second: Script) -> tuple[gpuserve.Failover, gpuserve.Client, gpuserve.Client]:
    a, b = first.client(name="a"), second.client(name="b")
    return gpuserve.Failover([a, b], backoff=Backoff(attempts=2, base=0.001)), a, b


def test_failover_moves_on_from_an_unavailable_endpoint_without_retrying_it() -> None:
    first, second = Script((503, error("Busy", "full"))), Script((200, {"id": "r", "output": 2}))
    failover, _a, b = pair(first, second)
    assert failover.predict() == 2
    assert failover.last_answered is b and (len(first.sent), len(second.sent)) == (1, 1)


@pytest.mark.parametrize(
    "answer, raised",
    [
        ((422, error("InvalidInput", "bad")), gpuserve.ClientInputError),
        ((500, error("ValueError", "bad weights")), gpuserve.PredictError),
    ],
    ids=["invalid-input", "model-error"],
)
def test_failover_never_moves_on_for_what_would_fail_everywhere(answer: Answer, raised: type[Exception]) -> None:
    first, second = Script(answer), Script((200, {"id": "r", "output": 2}))
    failover, _a, _b = pair(first, second)
    with pytest.raises(raised):
        failover.predict()
    assert len(second.sent) == 0 and failover.last_answered is None


def test_failover_names_every_failure_when_no_endpoint_answers() -> None:
    first, second = Script((503, error("Busy", "a is full"))), Script((503, error("NotReady", "b is starting")))
    failover, _a, _b = pair(first, second)
    with pytest.raises(gpuserve.FailoverExhausted) as exhausted:
        failover.predict()
    assert [e.endpoint for e in exhausted.value.errors] == ["a", "b", "a", "b"]  # two rounds
    assert "a is full" in str(exhausted.value) and "b is starting" in str(exhausted.value)


def test_failover_streams_from_the_next_endpoint_when_the_first_is_unavailable() -> None:
    events = 'data: "alpha "\n\ndata: "beta "\n\nevent: done\ndata: {}\n\n'
    first = Script((503, error("NotReady", "model is draining")))
    second = Script((200, events, {"content-type": "text/event-stream"}))
    failover, _a, b = pair(first, second)
    assert list(failover.stream(count=2)) == ["alpha ", "beta "] and failover.last_answered is b


def test_async_failover_moves_on_like_failover() -> None:
    first, second = Script((429, {"detail": "slow down"})), Script((200, {"id": "r", "output": 2}))

    async def call() -> tuple[Any, str | None]:
        clients = [
            gpuserve.AsyncClient("http://a.test", transport=httpx.MockTransport(s), backoff=NO_WAIT, name=name)
            for s, name in ((first, "a"), (second, "b"))
        ]
        async with gpuserve.AsyncFailover(clients) as failover:
            output = await failover.predict()
            return output, failover.last_answered.name if failover.last_answered else None

    assert asyncio.run(call()) == (2, "b") and len(first.sent) == 1


def test_failover_refuses_an_empty_or_mixed_list() -> None:
    with pytest.raises(gpuserve.ClientConfigError, match=r"Failover needs one or more Client objects"):
        gpuserve.Failover([])
    with pytest.raises(gpuserve.ClientConfigError, match="latency_budget=0 is not allowed"):
        gpuserve.Failover([gpuserve.Client("http://x.test")], latency_budget=0)


# import cost -----------------------------------------------------------------------------------------------------


def test_import_gpuserve_loads_httpx_only_when_the_client_is_used() -> None:
    code = (
        "import sys, gpuserve; before = 'httpx' in sys.modules; gpuserve.Client; "
        "print(before, 'httpx' in sys.modules, 'jinja2' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True", "False"]


def test_an_unknown_attribute_of_gpuserve_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Clinet'"):
        _ = gpuserve.Clinet


def test_every_public_name_of_gpuserve_resolves() -> None:
    assert [name for name in gpuserve.__all__ if not hasattr(gpuserve, name)] == []

"""The batcher in-process: how groups form, how a group fails, and that drains and timeouts still hold."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

import gpuserve
from gpuserve.loader import load_app
from gpuserve.runtime import ModelHost, PredictFailed
from gpuserve.runtime import logs as request_logs
from gpuserve.runtime.batcher import Batcher
from gpuserve.runtime.server import create_app
from tests.apps import BATCHED


class Item(BaseModel):
    text: str
    sleep: float = 0.0


def batched_host(max_size: int, wait_ms: float, concurrency: int = 1, timeout: int = 600) -> ModelHost:
    """A sync batched model that records each group it was given, and how many groups ran at once."""

    @gpuserve.model(
        name="recorder",
        batch=gpuserve.Batch(max_size=max_size, wait_ms=wait_ms),
        concurrency=concurrency,
        timeout=timeout,
    )
    class Recorder:
        def setup(self) -> None:
            self.groups: list[list[str]] = []
            self.running = 0
            self.most = 0
            self.lock = threading.Lock()

        def predict(self, items: list[Item]) -> list[str]:
            with self.lock:
                self.groups.append([item.text for item in items])
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(max(item.sleep for item in items))
            with self.lock:
                self.running -= 1
            return [item.text.upper() for item in items]

    host = ModelHost(Recorder)
    host.setup()
    return host


def instance(host: ModelHost) -> Any:
    return host._bound().__self__


def batcher_of(host: ModelHost) -> Batcher:
    assert host.batcher is not None
    return host.batcher


def at_once(host: ModelHost, inputs: list[dict[str, Any]]) -> list[Any]:
    """Each input from a thread of its own, as concurrent requests arrive; outputs (or the error) in input order."""

    def one(raw: dict[str, Any]) -> Any:
        try:
            return host.predict(raw)
        except PredictFailed as exc:
            return exc

    with ThreadPoolExecutor(len(inputs)) as pool:
        return list(pool.map(one, inputs))


def test_a_full_group_goes_without_waiting() -> None:
    host = batched_host(max_size=4, wait_ms=5_000)
    started = time.monotonic()
    outputs = at_once(host, [{"text": t} for t in "abcd"])
    assert time.monotonic() - started < 2.0  # well under wait_ms: the fourth item sent the group
    assert outputs == ["A", "B", "C", "D"]
    assert [sorted(group) for group in instance(host).groups] == [["a", "b", "c", "d"]]


def test_a_partial_group_goes_once_its_first_item_waited_wait_ms() -> None:
    host = batched_host(max_size=8, wait_ms=300)
    started = time.monotonic()
    outputs = at_once(host, [{"text": t} for t in "abc"])
    elapsed = time.monotonic() - started
    assert outputs == ["A", "B", "C"]
    assert [sorted(group) for group in instance(host).groups] == [["a", "b", "c"]]
    assert 0.25 <= elapsed < 2.0, elapsed


def test_more_than_max_size_splits_into_groups_of_at_most_max_size() -> None:
    host = batched_host(max_size=3, wait_ms=50)
    texts = [f"t{i}" for i in range(10)]
    assert at_once(host, [{"text": t} for t in texts]) == [t.upper() for t in texts]
    groups = instance(host).groups
    assert max(len(group) for group in groups) == 3
    assert sorted(t for group in groups for t in group) == sorted(texts)


def test_the_next_group_forms_while_one_runs_and_concurrency_bounds_the_groups_running() -> None:
    host = batched_host(max_size=2, wait_ms=10_000, concurrency=1)
    outputs = at_once(host, [{"text": f"t{i}", "sleep": 0.2} for i in range(6)])
    assert outputs == [f"T{i}" for i in range(6)]
    assert [len(group) for group in instance(host).groups] == [2, 2, 2]  # full each time, never waiting 10 s
    assert instance(host).most == 1


def test_concurrency_runs_that_many_groups_at_once() -> None:
    host = batched_host(max_size=2, wait_ms=10_000, concurrency=2)
    at_once(host, [{"text": f"t{i}", "sleep": 0.3} for i in range(4)])
    assert instance(host).most == 2


class Job(BaseModel):
    text: str
    fail: str = ""


@gpuserve.model(name="failing", batch=gpuserve.Batch(max_size=3, wait_ms=5_000))
class Failing:
    """A group of three fails as its items ask: one ItemError, an exception, or one result too few."""

    def predict(self, items: list[Job]) -> list[str | gpuserve.ItemError]:
        if any(item.fail == "raise" for item in items):
            raise RuntimeError("the GPU fell over")
        results: list[str | gpuserve.ItemError] = [
            gpuserve.ItemError(f"{item.text} is unreadable") if item.fail == "item" else item.text for item in items
        ]
        return results[1:] if any(item.fail == "short" for item in items) else results


def test_an_item_error_fails_only_its_own_request() -> None:
    host = ModelHost(Failing)
    outputs = at_once(host, [{"text": "a"}, {"text": "b", "fail": "item"}, {"text": "c"}])
    assert outputs[0] == "a" and outputs[2] == "c"
    assert isinstance(outputs[1], PredictFailed)
    assert (outputs[1].type, outputs[1].message) == ("ItemError", "b is unreadable")


def test_an_exception_fails_every_request_of_the_group() -> None:
    host = ModelHost(Failing)
    outputs = at_once(host, [{"text": "a"}, {"text": "b", "fail": "raise"}, {"text": "c"}])
    assert [(o.type, o.message) for o in outputs] == [("RuntimeError", "the GPU fell over")] * 3


def test_a_result_list_of_the_wrong_length_fails_the_group_saying_so() -> None:
    host = ModelHost(Failing)
    outputs = at_once(host, [{"text": "a"}, {"text": "b", "fail": "short"}, {"text": "c"}])
    assert all(isinstance(o, PredictFailed) for o in outputs)
    assert outputs[0].message.startswith("predict was given 3 items and returned 2 results")
    assert at_once(host, [{"text": t} for t in "xyz"]) == ["x", "y", "z"]  # the next group is served as usual


@gpuserve.model(name="async-batched", batch=gpuserve.Batch(max_size=4, wait_ms=5_000))
class AsyncBatched:
    def setup(self) -> None:
        self.sizes: list[int] = []

    async def predict(self, items: list[Item]) -> list[dict[str, Any]]:
        self.sizes.append(len(items))
        await asyncio.sleep(0.01)
        return [{"text": item.text, "of": len(items)} for item in items]


def test_an_async_predict_is_awaited_once_per_group_from_event_loop_callers() -> None:
    host = ModelHost(AsyncBatched)
    host.setup()

    async def main() -> list[Any]:
        return await asyncio.gather(*(host.apredict(host.validate({"text": t})) for t in "wxyz"))

    assert asyncio.run(main()) == [{"text": t, "of": 4} for t in "wxyz"]
    assert instance(host).sizes == [4]


def test_a_caller_that_gives_up_before_its_group_starts_is_left_out() -> None:
    host = batched_host(max_size=8, wait_ms=300)

    async def main() -> Any:
        dropped = asyncio.ensure_future(batcher_of(host).apredict(host.validate({"text": "gone"})))
        kept = asyncio.ensure_future(batcher_of(host).apredict(host.validate({"text": "kept"})))
        await asyncio.sleep(0.05)
        dropped.cancel()
        return (await kept).result()

    assert asyncio.run(main()) == "KEPT"
    assert instance(host).groups == [["kept"]]


def test_interrupt_fails_what_has_not_started_and_wait_idle_counts_the_rest() -> None:
    host = batched_host(max_size=1, wait_ms=0)
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(host.predict, {"text": "first", "sleep": 0.5})
        time.sleep(0.1)
        waiting = pool.submit(host.predict, {"text": "second"})
        time.sleep(0.1)
        assert not host.wait_idle(0.05)  # a group running and an item waiting for it
        batcher_of(host).interrupt()
        with pytest.raises(PredictFailed) as info:
            waiting.result(timeout=5)
        assert info.value.type == "Interrupted" and "retry" in info.value.message
        assert running.result(timeout=5) == "FIRST"  # the group that had started finishes
    assert host.wait_idle(2.0)
    assert instance(host).groups == [["first"]]


@pytest.fixture
def batch_lines() -> Iterator[io.StringIO]:
    """The request logger's lines, as JSON, while the test runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(request_logs.RequestFormatter(as_json=True))
    level = request_logs.log.level
    request_logs.log.addHandler(handler)
    request_logs.log.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        request_logs.log.removeHandler(handler)
        request_logs.log.setLevel(level)


def test_each_group_is_logged_with_its_size_and_wait(batch_lines: io.StringIO) -> None:
    host = batched_host(max_size=8, wait_ms=200)
    at_once(host, [{"text": t} for t in "ab"])
    deadline = time.monotonic() + 5
    while '"event":"batch"' not in batch_lines.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)  # the group's line follows its answers, from the batcher's own thread
    time.sleep(0.1)  # and a second line, were there one, would follow as soon
    lines = [json.loads(line) for line in batch_lines.getvalue().splitlines()]
    batches = [line for line in lines if line["event"] == "batch"]
    assert len(batches) == 1
    assert {k: batches[0][k] for k in ("model", "size", "status", "item_errors")} == {
        "model": "recorder",
        "size": 2,
        "status": "ok",
        "item_errors": 0,
    }
    assert 150 <= batches[0]["wait_ms"] < 2000 and batches[0]["predict_ms"] >= 0


def test_the_server_answers_each_request_with_its_own_result_and_records_its_batch(batch_lines: io.StringIO) -> None:
    host = ModelHost(load_app(BATCHED.ref).cls)
    with TestClient(create_app(host, env={})) as client, ThreadPoolExecutor(4) as pool:
        request_logs.log.setLevel(logging.INFO)  # as `gpuserve serve` sets it; pytest's root level is WARNING
        texts = ["one", "two", "three", "four"]
        answers = list(pool.map(lambda t: client.post("/predict", json={"input": {"text": t}}), texts))
        families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json()["output"] for a in answers] == [{"text": t.upper(), "batch": 4} for t in texts]
    lines = [json.loads(line) for line in batch_lines.getvalue().splitlines()]
    assert sorted(line["batch_size"] for line in lines if line.get("path") == "/predict") == [4, 4, 4, 4]
    batch = {s.name: s.value for s in families["gpuserve_batch_size"].samples}
    assert (batch["gpuserve_batch_size_count"], batch["gpuserve_batch_size_sum"]) == (4, 16)


def test_a_timed_out_request_is_504_and_its_slot_stays_taken_until_the_group_returns() -> None:
    host = batched_host(max_size=1, wait_ms=0, timeout=1)
    with TestClient(create_app(host, env={})) as client:
        answered = client.post("/predict", json={"input": {"text": "slow", "sleep": 1.8}})
        assert answered.status_code == 504
        gate = client.app.app.state.jobs.gate  # type: ignore[attr-defined]
        assert gate.running == 1  # predict still runs: the slot is not handed to the next request
        deadline = time.monotonic() + 5
        while gate.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gate.running == 0
        assert client.post("/predict", json={"input": {"text": "next"}}).json()["output"] == "NEXT"


def test_the_server_admits_every_running_group_and_one_forming() -> None:
    host = batched_host(max_size=4, wait_ms=10, concurrency=2)
    with TestClient(create_app(host, env={})) as client:
        assert client.app.app.state.jobs.gate.concurrency == 12  # type: ignore[attr-defined]

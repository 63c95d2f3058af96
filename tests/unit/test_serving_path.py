"""The fast serving path keeps what the slow one promised: timeouts, the drain, the queue, body limits, the log line."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import gpuserve
from gpuserve.runtime import ModelHost, logs
from gpuserve.runtime.jobs import Event, Jobs
from gpuserve.runtime.limits import BodyRefused, Gate, QueueFull, read_body
from gpuserve.runtime.runpod_worker import RunpodWorker
from gpuserve.runtime.server import create_app


@gpuserve.model(name="sleepy", timeout=1, concurrency=1)
class Sleepy:
    async def predict(self, seconds: float = 0.0) -> str:
        await asyncio.sleep(seconds)
        return "awake"


SEEN: list[threading.Thread] = []


@gpuserve.model(name="threads", concurrency=1)
class Threads:
    def predict(self) -> int:
        SEEN.append(threading.current_thread())  # kept alive, so a new thread cannot pass for an old one
        return len(SEEN)


def ready_host(cls: type) -> ModelHost:
    host = ModelHost(cls)
    host.setup()
    return host


def test_async_predict_past_its_timeout_is_504_and_its_slot_is_free_again() -> None:
    with TestClient(create_app(ready_host(Sleepy), env={})) as client:
        began = time.monotonic()
        late = client.post("/predict", json={"input": {"seconds": 30}})
        took = time.monotonic() - began
        after = client.post("/predict", json={"input": {}})
    assert (late.status_code, late.json()["error"]["type"]) == (504, "Timeout")
    assert took < 5, f"504 after {took:.1f} s with timeout=1"
    assert (after.status_code, after.json()["output"]) == (200, "awake")


def test_interrupt_answers_the_running_and_the_queued_request_and_frees_the_gate() -> None:
    host = ready_host(Sleepy)

    async def scenario() -> tuple[list[str], int, int]:
        gate = Gate(concurrency=1, max_queue=4)
        jobs = Jobs(host, gate, grace=30)
        value = host.signature.input_model(seconds=30)

        async def one() -> str:
            job = await jobs.start(value)
            if isinstance(job, Event):
                return job.kind
            return (await jobs.next(job, time.monotonic() + 60)).kind

        running, queued = asyncio.ensure_future(one()), asyncio.ensure_future(one())
        await asyncio.sleep(0.05)
        waiting = gate.waiting
        jobs.interrupt()
        kinds = list(await asyncio.gather(running, queued))
        return kinds, waiting, gate.running + gate.waiting

    kinds, waiting, left = asyncio.run(scenario())
    assert kinds == ["interrupted", "interrupted"]
    assert waiting == 1  # the second one was queued behind the first
    assert left == 0


def test_gate_serves_in_arrival_order_and_refuses_past_its_queue() -> None:
    async def scenario() -> tuple[list[int], bool]:
        gate = Gate(concurrency=1, max_queue=2)
        order: list[int] = []
        await gate.acquire()

        async def waiter(n: int) -> None:
            await gate.acquire()
            order.append(n)
            gate.release()

        waiters = [asyncio.ensure_future(waiter(n)) for n in (1, 2)]
        await asyncio.sleep(0)
        try:
            gate.enqueue()
            refused = False
        except QueueFull:
            refused = True
        gate.release()
        await asyncio.gather(*waiters)
        return order, refused

    order, refused = asyncio.run(scenario())
    assert order == [1, 2]
    assert refused


def test_body_slower_than_the_read_timeout_is_408() -> None:
    async def never() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {}

    async def scenario() -> tuple[int, float]:
        began = time.monotonic()
        with pytest.raises(BodyRefused) as refused:
            await read_body(never, max_bytes=1000, timeout=1, declared=None)
        return refused.value.status, time.monotonic() - began

    status, took = asyncio.run(scenario())
    assert status == 408
    assert 1 <= took < 3


def test_sync_predicts_reuse_an_idle_predict_thread() -> None:
    host = ready_host(Threads)
    SEEN.clear()
    host.spawn(host.predict, {}).result(timeout=10)
    deadline = time.monotonic() + 5
    while host.busy_threads and time.monotonic() < deadline:  # the first thread is idle again
        time.sleep(0.01)
    host.spawn(host.predict, {}).result(timeout=10)
    assert len(SEEN) == 2 and SEEN[0] is SEEN[1]


class CountedWrites(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def request_stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountedWrites]:
    """gpuserve's own request handler, alone on its logger at INFO (as `gpuserve serve` sets it), on a stream."""
    stream = CountedWrites()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.RequestFormatter(as_json=True))
    handler.gpuserve_requests = True  # type: ignore[attr-defined]  # as logs.configure() marks its own
    monkeypatch.setattr(logs, "_ours", handler)
    monkeypatch.setattr(logs.log, "handlers", [handler])
    monkeypatch.setattr(logs.log, "disabled", False)
    # A LogRecord made anyway reaches the root logger, where caplog sees it (and with propagate off, pytest would
    # add its own handlers to this logger, which turns the direct write off).
    monkeypatch.setattr(logs.log, "propagate", True)
    level = logs.log.level
    logs.log.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logs.log.setLevel(level)


def request_ids(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["request_id"] for line in stream.getvalue().splitlines()]


def test_request_line_written_directly_is_the_formatters_line(
    request_stream: CountedWrites, caplog: pytest.LogCaptureFixture
) -> None:
    fields = {"request_id": "r-1", "model": "m", "status": 200, "duration_ms": 1.5, "queue_ms": None, "batch_size": 1}
    logs.request(dict(fields))
    assert caplog.records == []  # no LogRecord: written directly
    line = json.loads(request_stream.getvalue())
    fields = {"event": "request", **fields}
    record = logging.makeLogRecord({"name": "gpuserve.requests", "levelno": logging.INFO, "levelname": "INFO"})
    record.__dict__["fields"] = fields
    expected = json.loads(logs.RequestFormatter(as_json=True).format(record))
    assert {k: v for k, v in line.items() if k != "time"} == {k: v for k, v in expected.items() if k != "time"}


def test_request_line_milliseconds_are_rounded_to_the_microsecond() -> None:
    assert [logs.ms(0.0123456789), logs.ms(2.0), logs.ms(0.0)] == [12.346, 2000.0, 0.0]


async def next_flush() -> None:
    """Past the deferred lines' flush: its timer is due before this sleep's."""
    await asyncio.sleep(logs.FLUSH_SECONDS * 2)


def deferred(request_id: str) -> None:
    """A request line deferred on the running loop, as RunPod's worker logs its jobs'."""
    logs.request({"request_id": request_id, "model": "m", "status": 200}, loop=asyncio.get_running_loop())


def test_deferred_lines_of_turns_apart_are_written_together_once_flush_seconds_pass(
    request_stream: CountedWrites, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "FLUSH_SECONDS", 0.5)  # far past the turns between them, on a busy machine too

    async def two_requests_turns_apart() -> str:
        deferred("r-1")
        await asyncio.sleep(0.01)
        deferred("r-2")
        written_before_the_flush = request_stream.getvalue()
        await next_flush()
        return written_before_the_flush

    assert asyncio.run(two_requests_turns_apart()) == ""
    assert request_ids(request_stream) == ["r-1", "r-2"]
    assert request_stream.writes == 1


def test_deferred_lines_reaching_flush_lines_are_written_at_the_next_turn(
    request_stream: CountedWrites, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "FLUSH_LINES", 3)
    monkeypatch.setattr(logs, "FLUSH_SECONDS", 60.0)  # so that only the count can bring them out

    async def requests() -> str:
        for request_id in ("r-1", "r-2", "r-3"):
            deferred(request_id)
        await asyncio.sleep(0.01)  # a timer, as the flush's: due after it
        return request_stream.getvalue()

    assert request_ids(io.StringIO(asyncio.run(requests()))) == ["r-1", "r-2", "r-3"]
    assert request_stream.writes == 1


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
@pytest.mark.parametrize("quiet", [False, True], ids=["info", "debug"])
def test_deferred_lines_are_what_the_formatter_makes_of_each_line_written_at_once(
    request_stream: CountedWrites, monkeypatch: pytest.MonkeyPatch, as_json: bool, quiet: bool
) -> None:
    formatter = logs.RequestFormatter(as_json)
    assert logs._ours is not None
    logs._ours.setFormatter(formatter)
    logs.log.setLevel(logging.DEBUG)
    times = [1000.25, 1001.5, 1000.75, 1002.0]  # a second back and forth: each line keeps its own
    clock = iter(times)
    monkeypatch.setattr(time, "time", lambda: next(clock))
    lines: list[dict[str, Any]] = [
        {"request_id": "r-1", "model": "m", "status": 200, "duration_ms": 1.5, "queue_ms": None, "batch_size": 1},
        {"request_id": 'r-"\u00e9\n', "model": "m", "status": "failed", "duration_ms": 0.001, "batch_size": None},
        {"request_id": "r-3"},
        {},
    ]

    async def deferred_lines() -> None:
        for fields in lines:
            logs.request(fields, quiet=quiet, loop=asyncio.get_running_loop())
        await next_flush()

    asyncio.run(deferred_lines())
    level = "DEBUG" if quiet else "INFO"
    made = [formatter.line(level, at, fields, "request") + "\n" for at, fields in zip(times, lines, strict=True)]
    assert request_stream.getvalue() == "".join(made)
    assert request_stream.writes == 1
    if as_json:
        assert [json.loads(line)["time"][17:] for line in made] == ["40.250Z", "41.500Z", "40.750Z", "42.000Z"]
        assert json.loads(made[3]) == {"time": "1970-01-01T00:16:42.000Z", "level": level.lower(), "event": "request"}


def test_deferred_line_carries_the_time_it_was_logged_not_the_time_it_was_written(
    request_stream: CountedWrites, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = itertools.chain([1000.25], itertools.repeat(2000.5))  # when logged, then any later reading

    async def logged_then_written() -> None:
        monkeypatch.setattr(time, "time", lambda: next(clock))
        deferred("r-1")
        await next_flush()

    asyncio.run(logged_then_written())
    assert json.loads(request_stream.getvalue())["time"] == "1970-01-01T00:16:40.250Z"


def test_deferred_line_the_formatter_cannot_make_is_logged_as_a_record_with_the_time_it_was_logged_the_rest_written(
    request_stream: CountedWrites, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = itertools.chain([1000.25], itertools.repeat(2000.5))

    async def logged_then_written() -> None:
        monkeypatch.setattr(time, "time", lambda: next(clock))
        deferred("r-\ud800")  # pydantic writes no lone surrogate
        deferred("r-2")
        await next_flush()

    asyncio.run(logged_then_written())
    records = [record for record in caplog.records if record.name == "gpuserve.requests"]
    assert [(record.__dict__["fields"]["request_id"], record.created) for record in records] == [("r-\ud800", 1000.25)]
    assert request_ids(request_stream) == ["r-2"]


def test_deferred_line_of_a_formatter_replaced_before_the_flush_is_logged_as_a_record(
    request_stream: CountedWrites, caplog: pytest.LogCaptureFixture
) -> None:
    async def logged_then_reformatted() -> None:
        deferred("r-1")
        assert logs._ours is not None
        logs._ours.setFormatter(logging.Formatter("plain %(message)s"))
        await next_flush()

    asyncio.run(logged_then_reformatted())
    fields = [record.__dict__["fields"] for record in caplog.records if record.name == "gpuserve.requests"]
    assert fields == [{"event": "request", "request_id": "r-1", "model": "m", "status": 200}]
    assert request_stream.getvalue() == "plain request\n"


def test_deferred_line_waits_for_a_send_queued_in_its_turn(request_stream: CountedWrites) -> None:
    """As RunPod's aiohttp sends an answer: from a task of its own, created after the handler returned."""

    async def answer_then_send() -> None:
        deferred("r-1")

        async def send() -> None:
            request_stream.write("the answer\n")

        await asyncio.create_task(send())
        await next_flush()

    asyncio.run(answer_then_send())
    assert request_stream.getvalue().splitlines()[0] == "the answer"


def test_deferred_lines_of_a_handler_replaced_before_the_flush_go_to_it_at_once(
    request_stream: CountedWrites, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = CountedWrites()
    replacement = logging.StreamHandler(later)
    replacement.setFormatter(logs.RequestFormatter(as_json=True))

    async def log_across_a_reconfiguration() -> tuple[str, str]:
        deferred("r-1")
        monkeypatch.setattr(logs, "_ours", replacement)
        monkeypatch.setattr(logs.log, "handlers", [replacement])
        deferred("r-2")
        written = request_stream.getvalue(), later.getvalue()
        await next_flush()
        return written

    first_handlers, second_handlers = asyncio.run(log_across_a_reconfiguration())
    assert (request_ids(io.StringIO(first_handlers)), second_handlers) == (["r-1"], "")
    assert request_ids(later) == ["r-2"]


def test_deferred_line_on_a_broken_stream_is_logged_with_its_fields(
    request_stream: CountedWrites, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(text: str) -> int:
        raise OSError("the pipe is closed")

    monkeypatch.setattr(request_stream, "write", broken)
    monkeypatch.setattr(logging, "raiseExceptions", False)  # logging's own report of the broken stream

    async def one_request() -> None:
        deferred("r-1")
        await next_flush()

    asyncio.run(one_request())
    fields = [record.__dict__["fields"] for record in caplog.records if record.name == "gpuserve.requests"]
    assert fields == [{"event": "request", "request_id": "r-1", "model": "m", "status": 200}]


def test_deferred_line_of_a_loop_stopped_before_its_flush_is_written_by_flush_all(
    request_stream: CountedWrites,
) -> None:
    loop = asyncio.new_event_loop()

    def log_and_stop() -> None:
        logs.request({"request_id": "r-1", "model": "m", "status": 200, "duration_ms": 1.5}, loop=loop)
        loop.stop()

    loop.call_soon(log_and_stop)
    loop.run_forever()
    loop.close()
    assert request_stream.getvalue() == ""
    logs.flush_all()  # what atexit runs
    assert request_ids(request_stream) == ["r-1"]


def test_runpod_jobs_line_waits_past_its_answer_and_is_written_at_the_workers_shutdown(
    request_stream: CountedWrites,
) -> None:
    worker = RunpodWorker(ready_host(Sleepy))
    handler = worker.config(["--rp_serve_api"])["handler"]

    async def job() -> tuple[Any, str]:
        output = await handler({"id": "job-1", "input": {}})
        return output, request_stream.getvalue()

    assert asyncio.run(job()) == ("awake", "")
    worker.shutdown()
    assert request_ids(request_stream) == ["job-1"]


@gpuserve.model(name="blocking", timeout=1, concurrency=1)
class Blocking:
    def predict(self, seconds: float = 0.0) -> str:
        time.sleep(seconds)  # one call into C: the drain's stop cannot land in it
        return "done"


def test_runpod_worker_exiting_past_the_drain_writes_the_deferred_lines_first(
    request_stream: CountedWrites, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPUSERVE_GRACE_SECONDS", "0.2")  # stuck at 1.2 s (timeout 1 + grace), exits at 1.6 s
    monkeypatch.setattr(RunpodWorker, "watch_seconds", 0.05)
    monkeypatch.setattr("gpuserve.runtime.runpod_worker.os.kill", lambda pid, sig: None)
    written_at_exit: list[str] = []
    monkeypatch.setattr(
        "gpuserve.runtime.runpod_worker.os._exit", lambda code: written_at_exit.append(request_stream.getvalue())
    )
    worker = RunpodWorker(ready_host(Blocking))
    handler = worker.config(["--rp_serve_api"])["handler"]

    async def quick_then_stuck() -> None:
        await handler({"id": "quick", "input": {}})
        await handler({"id": "stuck", "input": {"seconds": 2}})  # on RunPod's loop: no flush meanwhile

    try:
        asyncio.run(quick_then_stuck())
    finally:
        worker.shutdown()
    assert [request_ids(io.StringIO(written)) for written in written_at_exit[:1]] == [["quick"]]


def test_deferred_line_of_a_loop_closed_before_its_next_turn_is_written_as_the_process_exits() -> None:
    code = (
        "import asyncio, logging\n"
        "from gpuserve.runtime import logs\n"
        "logs.configure()\n"
        "logs.log.setLevel(logging.INFO)\n"
        "loop = asyncio.new_event_loop()\n"
        "def log_and_stop():\n"
        "    logs.request({'request_id': 'r-1', 'model': 'm', 'status': 200}, loop=loop)\n"
        "    loop.stop()\n"
        "loop.call_soon(log_and_stop)\n"
        "loop.run_forever()\n"
        "loop.close()\n"
        "print('closed', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout == "closed\n"
    assert request_ids(io.StringIO(done.stderr)) == ["r-1"]

"""RunPod's handler and cog's bridge run predict in the platform's own task or thread; the drain and a platform's
stop still reach it there (the platforms themselves: tests/integration/test_platform_drain.py)."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from typing import Any

import pytest

import gpuserve
from gpuserve.runtime import ModelHost
from gpuserve.runtime.cog_runner import CogBridge, Interrupted
from gpuserve.runtime.inputs import Invalid, validate_strict
from gpuserve.runtime.runpod_worker import RunpodWorker


@gpuserve.model(name="waits", grace=5)
class Waits:
    ended: list[str] = []

    async def predict(self, seconds: float = 0.0, tag: str = "x") -> str:
        try:
            await asyncio.sleep(seconds)
        finally:
            self.ended.append(tag)
        return tag


@gpuserve.model(name="waits-sync", grace=5)
class WaitsSync:
    ended: list[str] = []

    def predict(self, seconds: float = 0.0, tag: str = "x") -> str:
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:  # Python lines, where an interruption can land
                time.sleep(0.01)
        finally:
            self.ended.append(tag)
        return tag


def runpod(cls: type) -> RunpodWorker:
    worker = RunpodWorker(ModelHost(cls))
    worker.setup()
    return worker


def test_runpod_async_job_answers_in_its_own_task() -> None:
    worker = runpod(Waits)

    async def main() -> tuple[Any, Any]:
        return await worker.handle({"id": "a", "input": {"tag": "a"}}), await worker.handle({"id": "b", "input": {}})

    assert asyncio.run(main()) == ("a", "x")


def test_runpod_invalid_input_is_an_error_naming_the_field() -> None:
    answer = asyncio.run(runpod(Waits).handle({"id": "a", "input": {"seconds": "soon"}}))
    assert answer["error"].startswith("invalid input: input.seconds:")


@pytest.mark.parametrize("cls", [Waits, WaitsSync], ids=["async", "sync"])
def test_runpod_job_past_the_grace_answers_interrupted_retry_it(cls: Any) -> None:
    worker = runpod(cls)

    async def main() -> Any:
        job = asyncio.ensure_future(worker.handle({"id": "long", "input": {"seconds": 3}}))
        await asyncio.sleep(0.2)
        worker._interrupt()  # what the drain does once the grace ran out
        return await asyncio.wait_for(job, 2)

    answer = asyncio.run(main())
    assert answer["error"].startswith("Interrupted: the worker is shutting down") and "retry it" in answer["error"]


def test_runpod_stopped_async_job_is_cancelled_and_its_predict_has_ended() -> None:
    Waits.ended.clear()
    worker = runpod(Waits)

    async def main() -> None:
        job = asyncio.ensure_future(worker.handle({"id": "long", "input": {"seconds": 3, "tag": "long"}}))
        await asyncio.sleep(0.2)
        job.cancel()  # RunPod's stop_job
        with pytest.raises(asyncio.CancelledError):
            await job
        assert Waits.ended == ["long"]

    asyncio.run(main())


def test_runpod_stopped_sync_job_holds_until_its_predict_returns() -> None:
    WaitsSync.ended.clear()
    worker = runpod(WaitsSync)

    async def main() -> float:
        job = asyncio.ensure_future(worker.handle({"id": "long", "input": {"seconds": 0.6, "tag": "long"}}))
        await asyncio.sleep(0.2)
        stopped = time.monotonic()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        assert WaitsSync.ended == ["long"]
        return time.monotonic() - stopped

    assert asyncio.run(main()) >= 0.3


def cog(cls: type) -> CogBridge:
    bridge = CogBridge(ModelHost(cls))
    bridge.host.setup()
    return bridge


def in_a_thread(bridge: CogBridge, inputs: dict[str, Any]) -> Any:
    """bridge.predict on a fresh thread, as coglet calls a sync run(): its output, or what it raised."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(_outcome(bridge, inputs)))
    thread.start()
    thread.join(10)
    return result[0]


def _outcome(bridge: CogBridge, inputs: dict[str, Any]) -> Any:
    try:
        return bridge.predict(inputs)
    except BaseException as exc:
        return exc


@pytest.mark.parametrize("cls", [Waits, WaitsSync], ids=["async", "sync"])
def test_cog_predicts_from_thread_after_thread(cls: Any) -> None:
    bridge = cog(cls)
    assert [in_a_thread(bridge, {"tag": tag, "seconds": None}) for tag in "abc"] == ["a", "b", "c"]


@pytest.mark.parametrize("cls", [Waits, WaitsSync], ids=["async", "sync"])
def test_cog_prediction_past_the_grace_fails_as_interrupted(cls: Any) -> None:
    cls.ended.clear()
    bridge = cog(cls)
    bridge.drain.deadline = time.monotonic() + 0.3
    threading.Timer(0.3, bridge.drain.interrupt).start()  # what the drain's watcher does at the deadline
    started = time.monotonic()
    failed = in_a_thread(bridge, {"seconds": 5, "tag": "long"})
    assert isinstance(failed, Interrupted) and str(failed).endswith("retry it"), failed
    assert time.monotonic() - started < 3 and cls.ended == ["long"]  # predict itself stopped, its finally ran
    assert isinstance(in_a_thread(bridge, {"tag": "late"}), Interrupted)  # one arriving after the deadline


def test_validation_of_json_values_still_refuses_a_lone_surrogate_naming_the_input() -> None:
    model = ModelHost(Waits).signature.input_model
    with pytest.raises(Invalid, match="^input: Invalid JSON"):
        validate_strict(model, {"tag": "\ud800"}, prefix=("input",))
    assert validate_strict(model, {"seconds": 2.0, "tag": "t"}, prefix=("input",)).model_dump() == {
        "seconds": 2.0,
        "tag": "t",
    }


@gpuserve.model(name="slow-preempt", grace=1)
class SlowPreempt:
    def on_preempt(self) -> None:
        time.sleep(4)  # longer than the grace

    def predict(self, seconds: float = 0.0) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return "done"


def test_cog_prediction_is_interrupted_at_the_grace_while_on_preempt_still_runs() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    bridge = cog(SlowPreempt)
    bridge.drain.port = listener.getsockname()[1]
    bridge.drain.start()
    time.sleep(1.2)  # the watcher has seen cog listening
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(_outcome(bridge, {"seconds": 8})))
    thread.start()
    listener.close()  # cog's SIGTERM: its listener closes
    started = time.monotonic()
    thread.join(10)
    assert isinstance(outcome[0], Interrupted), outcome
    assert time.monotonic() - started < 3.5  # the grace (1 s) and the watcher's polling, not on_preempt's 4 s


@gpuserve.model(name="stubborn", grace=1)
class Stubborn:
    async def predict(self, seconds: float = 0.0) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:  # swallowed: the predict goes on
                pass
        return "done"


def test_runpod_async_predict_that_swallows_its_stop_is_marked_stuck_and_the_worker_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signals: list[int] = []
    monkeypatch.setattr("gpuserve.runtime.runpod_worker.os.kill", lambda pid, sig: signals.append(sig))
    worker = runpod(Stubborn)

    async def main() -> None:
        job = asyncio.ensure_future(worker.handle({"id": "long", "input": {"seconds": 4}}))
        await asyncio.sleep(0.2)
        job.cancel()  # RunPod's stop_job
        await asyncio.sleep(2.5)  # the grace (1 s) and the once-a-second watch
        assert worker.host.state == "failed" and signals == [signal.SIGTERM]
        with pytest.raises(asyncio.CancelledError):
            await job  # it still stops once the predict returns

    asyncio.run(main())

"""ModelHost.stop: the drain where no listener is gpuserve's (Modal's exit hook)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import gpuserve
from gpuserve.runtime import ModelHost
from gpuserve.runtime.host import ANSWER_SECONDS


@gpuserve.model(name="stoppable", concurrency=2)
class Stoppable:
    events: list[str] = []

    def setup(self) -> None:
        self.events.append("setup")

    def predict(self, seconds: float = 0.0) -> float:
        time.sleep(seconds)
        self.events.append("predicted")
        return seconds

    def on_preempt(self) -> None:
        self.events.append("on_preempt")

    def shutdown(self) -> None:
        self.events.append("shutdown")


def test_stop_drains_checkpoints_waits_then_shuts_down_once() -> None:
    Stoppable.events.clear()
    host = ModelHost(Stoppable)
    host.setup()
    running = threading.Thread(target=lambda: asyncio.run(host.apredict(host.validate({"seconds": 0.5}))))
    running.start()
    time.sleep(0.1)
    host.stop(grace=5)
    assert host.state == "stopped"
    assert Stoppable.events == ["setup", "on_preempt", "predicted", "shutdown"]
    host.stop(grace=5)
    assert Stoppable.events.count("shutdown") == 1
    running.join(5)


def test_stop_gives_up_waiting_after_the_grace() -> None:
    Stoppable.events.clear()
    host = ModelHost(Stoppable)
    host.setup()
    threading.Thread(target=lambda: asyncio.run(host.apredict(host.validate({"seconds": 4})))).start()
    time.sleep(0.1)
    started = time.monotonic()
    host.stop(grace=0.3)
    assert time.monotonic() - started < 0.3 + ANSWER_SECONDS + 0.5  # the grace, then time to answer; not the 2 s
    assert Stoppable.events == ["setup", "on_preempt", "shutdown"]


def test_cancelling_predicts_as_they_start_raises_nothing_in_their_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller that gives up (RunPod's stop, a drain) cancels the future: the thread must not then fail to set it."""
    failures: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: failures.append(args.exc_value))
    host = ModelHost(Stoppable)

    async def give_up_at_once() -> None:
        for _ in range(300):
            task = asyncio.ensure_future(host.in_thread(time.sleep, 0.001))
            await asyncio.sleep(0)
            task.cancel()

    asyncio.run(give_up_at_once())
    assert host.wait_idle(5)
    assert failures == []

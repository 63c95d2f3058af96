"""ModelHost.stop: the drain where no listener is gpuserve's (Modal's exit hook)."""

from __future__ import annotations

import asyncio
import threading
import time

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

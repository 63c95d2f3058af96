"""A slow, highly concurrent model that records setup, on_preempt and shutdown: for the drain tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

import gpuserve


def _record(event: str) -> None:
    path = os.environ.get("LIFECYCLE_LOG")
    if path:
        with Path(path).open("a") as handle:
            handle.write(f"{event} {os.getpid()}\n")


@gpuserve.model(name="drainable", concurrency=64, timeout=60, grace=10, spot_notices="aws")
class Drainable:
    def setup(self) -> None:
        _record("setup")

    def predict(self, seconds: float = 0.0, tag: str = "x") -> dict[str, str]:
        _record("predict")
        time.sleep(seconds)
        return {"tag": tag}

    def on_preempt(self) -> None:
        _record("on_preempt")

    def shutdown(self) -> None:
        _record("shutdown")

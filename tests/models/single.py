"""One predict at a time (and two, in Pair), recording when each starts and ends: for RunPod's stop and drain tests."""

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


@gpuserve.model(name="single", concurrency=1, timeout=60, grace=30)
class Single:
    def setup(self) -> None:
        _record("setup")

    def predict(self, seconds: float = 0.0, tag: str = "x") -> str:
        _record(f"start:{tag}")
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:  # Python lines, where the drain's stop can land (RunPod, cog)
                time.sleep(0.05)
        except BaseException:
            _record(f"stopped:{tag}")
            raise
        _record(f"end:{tag}")
        return tag

    def on_preempt(self) -> None:
        _record("on_preempt")

    def shutdown(self) -> None:
        _record("shutdown")


@gpuserve.model(name="pair", concurrency=2, timeout=60, grace=30)
class Pair(Single):
    """Two predicts at once: on RunPod, each sync predict runs on a predict thread."""

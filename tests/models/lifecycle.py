"""A slow model that records setup and shutdown in a file named by LIFECYCLE_LOG: for drain and signal tests."""

import os
import time
from pathlib import Path

from pydantic import BaseModel, Field

import gpuserve


class SleepInput(BaseModel):
    seconds: float = Field(0.0, ge=0, le=30, description="How long predict sleeps")
    tag: str = Field("x", max_length=32)


class SleepOutput(BaseModel):
    tag: str
    slept: float


def _record(event: str) -> None:
    path = os.environ.get("LIFECYCLE_LOG")
    if path:
        with Path(path).open("a") as handle:
            handle.write(f"{event} {os.getpid()}\n")


@gpuserve.model(
    name="lifecycle",
    gpu="L40S",
    keep_warm=1,
    max_containers=3,
    idle_timeout=120,
    timeout=60,
    concurrency=2,
    secrets=["API_KEY"],
    image=gpuserve.Image(python="3.11").apt_install("curl").env(GREETING="hi there", QUOTED='say "$HOME"'),
)
class Lifecycle:
    def setup(self) -> None:
        time.sleep(float(os.environ.get("LIFECYCLE_SETUP_SECONDS", "0")))
        _record("setup")

    def predict(self, inp: SleepInput) -> SleepOutput:
        time.sleep(inp.seconds)
        return SleepOutput(tag=inp.tag, slept=inp.seconds)

    def shutdown(self) -> None:
        _record("shutdown")

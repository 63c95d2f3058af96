"""A model whose predict can outlast its timeout: the server must answer 504 (Timeout), on every Python."""

import time
from typing import Annotated

from pydantic import Field

import gpuserve


@gpuserve.model(name="slow", timeout=1, concurrency=2)
class Slow:
    def predict(self, seconds: Annotated[float, Field(ge=0, le=5, description="How long predict sleeps")]) -> str:
        time.sleep(seconds)
        return f"slept {seconds}s"

"""A streaming model: predict yields text tokens."""

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field

import gpuserve


@gpuserve.model(name="streamer", concurrency=2)
class Streamer:
    def setup(self) -> None:
        self.words = ["alpha", "beta", "gamma", "delta", "epsilon"]

    def predict(self, count: Annotated[int, Field(ge=1, le=5, description="How many words")] = 3) -> Iterator[str]:
        for word in self.words[:count]:
            yield word + " "

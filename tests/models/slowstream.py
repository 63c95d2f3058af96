"""A stream that outlasts its timeout: one chunk every 0.3 s, ten of them, with timeout=1."""

import time
from collections.abc import Iterator

import gpuserve


@gpuserve.model(name="slow-stream", timeout=1, concurrency=1)
class SlowStream:
    def predict(self, count: int = 10) -> Iterator[str]:
        for index in range(count):
            time.sleep(0.3)
            yield f"chunk {index}"

"""An async model with keyword inputs: async def predict and an async generator would both be awaited."""

import asyncio
from typing import Annotated, Literal

from pydantic import Field

import gpuserve


@gpuserve.model(name="async-echo", gpu=["H100", "A100-80GB"], concurrency=8)
class AsyncEcho:
    async def setup(self) -> None:
        self.prefix = "echo"

    async def predict(
        self, text: str, mode: Literal["upper", "lower"] = "upper", repeat: Annotated[int, Field(ge=1, le=8)] = 1
    ) -> list[str]:
        await asyncio.sleep(0)
        value = text.upper() if mode == "upper" else text.lower()
        return [f"{self.prefix}:{value}"] * repeat

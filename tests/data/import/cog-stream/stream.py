# mypy: ignore-errors
"""An async cog runner that streams its words, two predictions at a time."""

import asyncio

from cog import AsyncConcatenateIterator, BaseRunner, Input, concurrent


class Runner(BaseRunner):
    def setup(self) -> None:
        self.separator = " "

    @concurrent(max=2)
    async def run(
        self,
        prompt: str = Input(description="Word to repeat", min_length=1),
        count: int = Input(description="How many words", default=3, ge=1, le=5),
    ) -> AsyncConcatenateIterator[str]:
        for index in range(count):
            await asyncio.sleep(0)
            yield f"{prompt}-{index}{self.separator}"

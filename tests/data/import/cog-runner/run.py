# mypy: ignore-errors
"""A cog runner written the way Replicate's docs write one: the tests import it with `gpuserve import cog`."""

import os

from cog import BaseModel, BaseRunner, Input

MODES = ["upper", "lower", "title"]


class Output(BaseModel):
    text: str
    length: int
    greeting: str


class Runner(BaseRunner):
    def setup(self) -> None:
        self.greeting = os.environ.get("GREETING", "Hi")
        self.calls = 0

    def run(
        self,
        text: str = Input(description="Text to transform", min_length=1, max_length=20),
        mode: str = Input(description="How to transform it", default="upper", choices=MODES),
        times: int = Input(description="Repeat count", default=1, ge=1, le=3),
        ratio: float = Input(default=0.5, ge=0.0, le=1.0),
        tag: str = Input(default="x", regex="^[a-z]+$"),
        level: int = Input(default=1, choices=[1, 2, 3]),
        shout: bool = False,
        suffix: str | None = Input(default=None, description="Appended when given"),
    ) -> Output:
        if text == "boom":
            raise ValueError("text must not be boom")
        self.calls += 1
        done = getattr(str, mode)(text) * times
        if shout:
            done += "!"
        if suffix is not None:
            done += suffix
        done = f"{done}:{tag}:{level}:{ratio:.2f}"
        return Output(text=done, length=len(done), greeting=self.greeting)

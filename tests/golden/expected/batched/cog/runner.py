"""Replicate (cog) runner for the model 'batched-upper'.

Rendered by gpuserve 0.1.0 from batched:BatchedUpper (target: cog). Edit the model, then rebuild.
The run() signature is the model's input, field by field, so Replicate's form and API show it.
"""

from cog import BaseModel, BaseRunner, Input, concurrent

from gpuserve.runtime.cog_runner import CogBridge

bridge = CogBridge.load('batched:BatchedUpper')


class Output(BaseModel):
    text: str
    batch: int


class Runner(BaseRunner):
    def setup(self) -> None:
        bridge.setup()

    @concurrent(max=8)
    async def run(
        self,
        text: str = Input(description='Text to upper-case', min_length=1, max_length=64),
        fail: bool = Input(description='Answer this item with a gpuserve.ItemError', default=False),
        seconds: float = Input(description="Seconds predict sleeps for this item's group", default=0.0, ge=0, le=2),
    ) -> Output:
        inputs = {'text': text, 'fail': fail, 'seconds': seconds}
        return Output(**await bridge.apredict(inputs))

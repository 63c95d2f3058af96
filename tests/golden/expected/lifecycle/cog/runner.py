"""Replicate (cog) runner for the model 'lifecycle'.

Rendered by gpuserve 0.1.0 from lifecycle:Lifecycle (target: cog). Edit the model, then rebuild.
The run() signature is the model's input, field by field, so Replicate's form and API show it.
"""

from cog import BaseModel, BaseRunner, Input, concurrent

from gpuserve.runtime.cog_runner import CogBridge

bridge = CogBridge.load('lifecycle:Lifecycle')


class Output(BaseModel):
    tag: str
    slept: float


class Runner(BaseRunner):
    def setup(self) -> None:
        bridge.setup()

    @concurrent(max=2)
    async def run(
        self,
        seconds: float = Input(description='How long predict sleeps', default=0.0, ge=0, le=30),
        tag: str = Input(default='x', max_length=32),
    ) -> Output:
        inputs = {'seconds': seconds, 'tag': tag}
        return Output(**await bridge.apredict(inputs))

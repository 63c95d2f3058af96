"""Replicate (cog) runner for the model 'embeddings'.

Rendered by gpuserve 0.1.0 from app:Embeddings (target: cog). Edit the model, then rebuild.
The run() signature is the model's input, field by field, so Replicate's form and API show it.
"""

from cog import BaseModel, BaseRunner, Input, concurrent

from gpuserve.runtime.cog_runner import CogBridge

bridge = CogBridge.load('app:Embeddings')


class Output(BaseModel):
    vector: list[float]
    dimension: int


class Runner(BaseRunner):
    def setup(self) -> None:
        bridge.setup()

    @concurrent(max=32)
    async def run(
        self,
        text: str = Input(description='The text to embed', min_length=1, max_length=20000),
    ) -> Output:
        inputs = {'text': text}
        return Output(**await bridge.apredict(inputs))

"""Replicate (cog) runner for the model 'streamer'.

Rendered by gpuserve 0.1.0 from stream:Streamer (target: cog). Edit the model, then rebuild.
The run() signature is the model's input, field by field, so Replicate's form and API show it.
"""

from cog import AsyncConcatenateIterator, BaseRunner, Input, concurrent

from gpuserve.runtime.cog_runner import CogBridge

bridge = CogBridge.load('stream:Streamer')


class Runner(BaseRunner):
    def setup(self) -> None:
        bridge.setup()

    @concurrent(max=2)
    async def run(
        self,
        count: int = Input(description='How many words', default=3, ge=1, le=5),
    ) -> AsyncConcatenateIterator[str]:
        inputs = {'count': count}
        async for chunk in bridge.astream(inputs):
            yield chunk

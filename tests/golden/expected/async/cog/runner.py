"""Replicate (cog) runner for the model 'async-echo'.

Rendered by gpuserve 0.1.0 from asyncmodel:AsyncEcho (target: cog). Edit the model, then rebuild.
The run() signature is the model's input, field by field, so Replicate's form and API show it.
"""

from cog import BaseRunner, Input, concurrent

from gpuserve.runtime.cog_runner import CogBridge

bridge = CogBridge.load('asyncmodel:AsyncEcho')


class Runner(BaseRunner):
    def setup(self) -> None:
        bridge.setup()

    @concurrent(max=8)
    async def run(
        self,
        text: str = Input(),
        mode: str = Input(default='upper', choices=['upper', 'lower']),
        repeat: int = Input(default=1, ge=1, le=8),
    ) -> list[str]:
        inputs = {'text': text, 'mode': mode, 'repeat': repeat}
        return await bridge.apredict(inputs)

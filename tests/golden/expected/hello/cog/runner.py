"""Replicate (cog) runner for the model 'hello'.

Rendered by gpuserve 0.1.0 from app:Hello (target: cog). Edit the model, then rebuild.
The run() signature is the model's input, field by field, so Replicate's form and API show it.
"""

from typing import Any

from cog import BaseRunner, Input, concurrent

from gpuserve.runtime.cog_runner import CogBridge

bridge = CogBridge.load('app:Hello')


class Runner(BaseRunner):
    def setup(self) -> None:
        bridge.setup()

    @concurrent(max=4)
    async def run(
        self,
        name: str = Input(description='Who to greet', min_length=1, max_length=64),
        language: str = Input(default='en', choices=['en', 'fr', 'es']),
        excited: bool = Input(default=False),
    ) -> Any:
        inputs = {'name': name, 'language': language, 'excited': excited}
        return await bridge.apredict(inputs)

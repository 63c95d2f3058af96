"""Replicate (cog) runner for the model 'text-generation'.

Rendered by gpuserve 0.1.0 from app:TextGeneration (target: cog). Edit the model, then rebuild.
The run() signature is the model's input, field by field, so Replicate's form and API show it.
"""

from cog import BaseRunner, ConcatenateIterator, Input

from gpuserve.runtime.cog_runner import CogBridge

bridge = CogBridge.load('app:TextGeneration')


class Runner(BaseRunner):
    def setup(self) -> None:
        bridge.setup()

    def run(
        self,
        prompt: str = Input(description='Text to continue', min_length=1, max_length=4000),
        max_new_tokens: int = Input(description='How many tokens to add', default=32, ge=1, le=512),
        temperature: float = Input(description='below 0.01 decodes greedily (deterministic)', default=0.0, ge=0.0, le=2.0),
        seed: int = Input(description='Random seed used when temperature > 0', default=0, ge=0),
    ) -> ConcatenateIterator[str]:
        inputs = {'prompt': prompt, 'max_new_tokens': max_new_tokens, 'temperature': temperature, 'seed': seed}
        yield from bridge.stream(inputs)

"""Replicate (cog) runner for the model 'faulty'.

Rendered by gpuserve 0.1.0 from faulty:Faulty (target: cog). Edit the model, then rebuild.
The run() signature is the model's input, field by field, so Replicate's form and API show it.
"""

from typing import Any

from cog import BaseRunner, Input

from gpuserve.runtime.cog_runner import CogBridge

bridge = CogBridge.load('faulty:Faulty')


class Runner(BaseRunner):
    def setup(self) -> None:
        bridge.setup()

    def run(
        self,
        fail: bool = Input(default=False),
        message: str = Input(default='boom'),
    ) -> Any:
        inputs = {'fail': fail, 'message': message}
        return bridge.predict(inputs)

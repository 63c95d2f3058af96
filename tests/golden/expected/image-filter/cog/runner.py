"""Replicate (cog) runner for the model 'image-filter'.

Rendered by gpuserve 0.1.0 from app:ImageFilter (target: cog). Edit the model, then rebuild.
The run() signature is the model's input, field by field, so Replicate's form and API show it.
"""

from typing import Optional

from cog import BaseRunner, Input, Path, concurrent

from gpuserve.runtime.cog_runner import CogBridge

bridge = CogBridge.load('app:ImageFilter')


class Runner(BaseRunner):
    def setup(self) -> None:
        bridge.setup()

    @concurrent(max=4)
    async def run(
        self,
        image: Path = Input(description='The image to process: PNG, JPEG or WebP, at most 16 MiB'),
        blur: float = Input(description='Gaussian blur radius in pixels; 0 keeps it sharp', default=2, ge=0, le=50),
        width: Optional[int] = Input(description='Resize to this width first, keeping the aspect ratio', default=None, ge=1, le=4096),
    ) -> Path:
        inputs = {'image': image, 'blur': blur, 'width': width}
        return Path(await bridge.apredict(inputs))

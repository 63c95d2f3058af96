# mypy: ignore-errors
"""A cog predictor in the older form (BasePredictor.predict, `predict:` in cog.yaml): a file in, a file out."""

import tempfile

from cog import BasePredictor, Input, Path


class Predictor(BasePredictor):
    def setup(self):
        self.marker = b"|done"

    def predict(
        self,
        data: Path = Input(description="A text file to reverse"),
        times: int = Input(description="How many copies", default=1, ge=1, le=3),
    ) -> Path:
        reversed_text = data.read_bytes()[::-1] * times + self.marker
        out = Path(tempfile.mkdtemp()) / "reversed.txt"
        out.write_bytes(reversed_text)
        return out

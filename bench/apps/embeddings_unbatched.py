"""examples/embeddings without batching, for bench/batching.py: the same setup and forward pass, one text a call."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import gpuserve

_path = Path(__file__).resolve().parents[2] / "examples" / "embeddings" / "app.py"
_spec = importlib.util.spec_from_file_location("embeddings_example", _path)
assert _spec is not None and _spec.loader is not None
example = importlib.util.module_from_spec(_spec)
sys.modules["embeddings_example"] = example
_spec.loader.exec_module(example)


@gpuserve.model(name="embeddings-unbatched", image=example.image, timeout=60)
class EmbeddingsUnbatched:
    setup = example.Embeddings.setup

    def predict(self, item: example.Item) -> example.Result:
        result: example.Result = example.Embeddings.predict(self, [item])[0]
        return result

"""examples/embeddings on LitServe, batched the same way: `python litserve_embeddings.py PORT MAX_BATCH WAIT_MS`.

The same body as gpuserve takes ({"input": {"text": ...}}), validated by the example's own Item, and the
example's own setup and forward pass; LitServe's batcher groups up to MAX_BATCH within WAIT_MS.
(No `from __future__ import annotations`: LitServe reads decode_request's annotation to type the body.)
"""

import sys
from typing import Any

import litserve as ls
from embeddings_unbatched import example
from pydantic import BaseModel


class PredictRequest(BaseModel):
    input: example.Item


class Embeddings(ls.LitAPI):
    def setup(self, device: str) -> None:
        example.Embeddings.setup(self)

    def decode_request(self, request: PredictRequest) -> Any:
        return request.input

    def batch(self, inputs: list[Any]) -> list[Any]:
        return inputs

    def predict(self, items: list[Any]) -> list[Any]:
        return example.Embeddings.predict(self, items)

    def unbatch(self, output: list[Any]) -> list[Any]:
        return output

    def encode_response(self, output: Any) -> dict[str, Any]:
        return {"output": output.model_dump()}


if __name__ == "__main__":
    port, max_batch, wait_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    api = Embeddings(max_batch_size=max_batch, batch_timeout=wait_ms / 1000)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=port, num_api_servers=1, log_level="warning", generate_client_file=False)

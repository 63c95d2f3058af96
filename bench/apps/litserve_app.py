"""The same no-op on LitServe, its body validated by the same pydantic model: `python litserve_app.py PORT`."""

import sys

import litserve as ls
from pydantic import BaseModel


class Input(BaseModel):
    text: str


class PredictRequest(BaseModel):
    input: Input


class Noop(ls.LitAPI):
    def setup(self, device: str) -> None:
        pass

    def decode_request(self, request: PredictRequest) -> str:
        return request.input.text

    def predict(self, x: str) -> str:
        return x

    def encode_response(self, output: str) -> dict[str, str]:
        return {"output": output}


if __name__ == "__main__":
    server = ls.LitServer(Noop(), accelerator="cpu", workers_per_device=1)
    server.run(
        host="127.0.0.1", port=int(sys.argv[1]), num_api_servers=1, log_level="warning", generate_client_file=False
    )

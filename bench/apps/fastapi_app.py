"""The hand-written FastAPI app gpuserve is measured against: a pydantic-validated body, the same no-op.

`app` is async; `sync_app` is the same endpoint as a plain `def`, which FastAPI runs in its thread pool.
Serve with `uvicorn bench.apps.fastapi_app:app --loop uvloop --http httptools --no-access-log`.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel


class Input(BaseModel):
    text: str


class PredictRequest(BaseModel):
    input: Input


class PredictResponse(BaseModel):
    output: str


app = FastAPI()
sync_app = FastAPI()


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/predict")
async def predict(request: PredictRequest) -> PredictResponse:
    return PredictResponse(output=request.input.text)


sync_app.get("/health")(health)


@sync_app.post("/predict")
def predict_sync(request: PredictRequest) -> PredictResponse:
    return PredictResponse(output=request.input.text)

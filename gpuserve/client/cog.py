"""A cog server (coglet), as `cog build` images and `python -m cog.server.http` serve it.

POST /predictions {"input": ...} answers {"status": "succeeded" | "failed", "output", "error"} (HTTP 200 even
when the model raised); 422 with {"detail": [{loc, msg}]} for an input its schema refuses; 409 while every
slot is busy; 503 before setup has finished (or when it failed). With `Accept: text/event-stream` a model
whose schema marks streaming sends `start`, one `output` per chunk ({"chunk", "index"}) and `completed`;
any other answers 406, and stream() then yields the whole output once.
"""

from __future__ import annotations

from typing import Any

from .base import Settings, auth_header, error_from_http, error_from_text, fields_of
from .errors import ClientError, ClientInputError, Unavailable
from .exchange import NEXT_EVENT, Chunk, Exchange, Reply, Request
from .gpuserve_http import base_url


class Cog:
    def __init__(self, settings: Settings) -> None:
        self.url = base_url(settings.url).removesuffix("/predictions")
        self.headers = auth_header(settings.token) | dict(settings.headers)

    def predict(self, inputs: dict[str, Any]) -> Exchange[Any]:
        reply = yield Request("POST", f"{self.url}/predictions", json={"input": inputs}, headers=self.headers)
        return self._output(self._prediction(reply))

    def stream(self, inputs: dict[str, Any]) -> Exchange[None]:
        headers = {**self.headers, "Accept": "text/event-stream"}
        reply = yield Request("POST", f"{self.url}/predictions", json={"input": inputs}, headers=headers, events=True)
        if reply.status == 406:  # the model does not stream
            output = yield from self.predict(inputs)
            yield Chunk(output)
            return
        if not reply.streaming:
            yield Chunk(self._output(self._prediction(reply)))
            return
        while True:
            event = yield NEXT_EVENT
            if event is None:
                raise Unavailable("the event stream ended before its `completed` event (the connection was closed)")
            if event.name == "output":
                yield Chunk(event.json()["chunk"])
            elif event.name == "completed":
                self._output(event.json(), chunks=True)
                return

    def _prediction(self, reply: Reply) -> dict[str, Any]:
        data = reply.data()
        if reply.status in (200, 201) and isinstance(data, dict) and "status" in data:
            return data
        if reply.status == 422 and isinstance(data, dict):
            fields = fields_of(data.get("detail"))
            message = "; ".join(f.render() for f in fields) or reply.text
            raise ClientInputError(message, type="InvalidInput", status=422, fields=fields)
        if reply.status == 409:
            raise Unavailable("the cog server is at capacity (every prediction slot is busy)", status=409)
        raise error_from_http(reply, auth="pass token= for the proxy in front of the cog server", what="cog server")

    def _output(self, prediction: dict[str, Any], chunks: bool = False) -> Any:
        status = prediction.get("status")
        if status == "succeeded":
            return None if chunks else prediction.get("output")
        if status == "failed":
            raise error_from_text(str(prediction.get("error") or "the prediction failed"))
        raise ClientError(f"the prediction ended {status}", type=str(status))

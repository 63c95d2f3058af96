"""The RunPod serverless handler: RunPod's job format over the same ModelHost every target uses.

RunPod's worker loop owns SIGTERM/SIGINT (it lets jobs in flight finish, then returns);
this module never replaces those handlers. The model's shutdown() runs once start() returns.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from .host import InvalidInput, ModelHost, PredictFailed

log = logging.getLogger("gpuserve")


def _local_test_mode(argv: list[str]) -> bool:
    """True where runpod runs one job and exits (--test_input or ./test_input.json).

    runpod never iterates a generator handler there, so streaming models get the list-returning handler.
    """
    if "--test_input" in argv:
        return True
    serving = "--rp_serve_api" in argv or os.environ.get("RUNPOD_REALTIME_PORT")
    return not serving and os.environ.get("RUNPOD_WEBHOOK_GET_JOB") is None


class RunpodWorker:
    """Handlers in the forms runpod.serverless.start takes."""

    def __init__(self, host: ModelHost) -> None:
        self.host = host

    @classmethod
    def load(cls, app_ref: str) -> RunpodWorker:
        return cls(ModelHost.from_ref(app_ref))

    def setup(self) -> None:
        """Run the model's setup() once, before the worker takes its first job."""
        self.host.setup()

    def shutdown(self) -> None:
        self.host.shutdown()

    def config(self, argv: list[str] | None = None) -> dict[str, Any]:
        """The dict for runpod.serverless.start: the handler in the form this mode needs, and concurrency."""
        argv = sys.argv if argv is None else argv
        streaming = self.host.signature.streaming and not _local_test_mode(argv)
        config: dict[str, Any] = {"handler": self.stream if streaming else self.handle}
        if streaming:
            config["return_aggregate_stream"] = True  # /runsync answers with the chunks as a list
        if self.host.spec.concurrency > 1:
            config["concurrency_modifier"] = self.concurrency_modifier
        return config

    def concurrency_modifier(self, current: int) -> int:
        return self.host.spec.concurrency

    async def handle(self, job: dict[str, Any]) -> Any:
        """One job in, its output (or RunPod's {"error": ...}) out. Sync predicts run off the event loop."""
        try:
            value = self.host.validate(job.get("input"))
            if self.host.signature.streaming:
                return [chunk async for chunk in self.host.astream(value)]
            return await self.host.apredict(value)
        except InvalidInput as exc:
            return {"error": f"invalid input: {exc}"}
        except PredictFailed as exc:
            log.error("gpuserve: job %s failed: %s", job.get("id"), exc, exc_info=exc.__cause__)
            return {"error": f"{exc.type}: {exc.message}"}

    async def stream(self, job: dict[str, Any]) -> AsyncIterator[Any]:
        """A generator handler: each chunk is posted to RunPod's stream as it is made."""
        try:
            value = self.host.validate(job.get("input"))
            async for chunk in self.host.astream(value):
                yield chunk
        except InvalidInput as exc:
            yield {"error": f"invalid input: {exc}"}
        except PredictFailed as exc:
            log.error("gpuserve: job %s failed: %s", job.get("id"), exc, exc_info=exc.__cause__)
            yield {"error": f"{exc.type}: {exc.message}"}

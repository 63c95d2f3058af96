"""The bridge a generated cog runner calls: cog's keyword inputs in, the model's JSON out.

cog validates inputs against .cog/openapi_schema.json before they reach here; the host
validates again, so the model sees exactly what it sees on every other target.

coglet owns SIGTERM and does not pass it to this worker process: it closes its listener and lets the
prediction in flight finish. The bridge watches that listener; once it closes, the model drains like
everywhere else: on_preempt() runs, and a prediction still running `grace` seconds later fails with a
message saying it was interrupted and can be retried, instead of keeping the container alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from . import logs
from .host import InvalidInput, ModelHost, PredictFailed
from .jobs import grace_seconds

log = logging.getLogger("gpuserve")
POLL_SECONDS = 0.5


class Interrupted(RuntimeError):
    """The container is stopping and this prediction could not finish within the grace period."""


class CogDrain:
    """Notices coglet closing its listener (its SIGTERM), then gives predictions `grace` seconds."""

    def __init__(self, host: ModelHost, port: str | None) -> None:
        self.host = host
        self.port = int(port) if port and port.isdigit() else None
        self.grace = grace_seconds(host)
        self.deadline: float | None = None

    def start(self) -> None:
        if self.port is not None:
            threading.Thread(target=self._watch, name="gpuserve-cog-drain", daemon=True).start()

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port or 0), timeout=POLL_SECONDS):
                return True
        except OSError:
            return False

    def _watch(self) -> None:
        seen = False
        while True:
            listening = self._listening()
            if seen and not listening:
                break
            seen = seen or listening
            time.sleep(POLL_SECONDS)
        log.info("gpuserve: cog's server stopped listening: draining, grace %g s", self.grace)
        self.deadline = time.monotonic() + self.grace
        self.host.drain()
        self.host.preempted()

    def check(self) -> None:
        """Raise Interrupted once the grace after the drain has run out."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise Interrupted(
                f"the model server is shutting down and this prediction could not finish within "
                f"grace={self.grace:g}s; retry it"
            )


def prediction_id() -> str:
    """coglet's id of the prediction running in this context (its `_coglet_prediction_id`), else a fresh one."""
    for var, value in contextvars.copy_context().items():
        if var.name == "_coglet_prediction_id" and value:
            return str(value)
    return uuid.uuid4().hex


class CogBridge:
    def __init__(self, host: ModelHost) -> None:
        self.host = host
        self.drain = CogDrain(host, os.environ.get("PORT"))
        logs.configure()

    @contextlib.contextmanager
    def _logged(self) -> Iterator[None]:
        """One log line per prediction, with coglet's prediction id as the request id."""
        started = time.perf_counter()
        status = "failed"
        try:
            yield
            status = "succeeded"
        finally:
            logs.request(
                request_id=prediction_id(),
                model=self.host.spec.name,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                queue_ms=None,
                batch_size=1,
            )

    @classmethod
    def load(cls, app_ref: str) -> CogBridge:
        return cls(ModelHost.from_ref(app_ref))

    def setup(self) -> None:
        """Run the model's setup() once; its shutdown() runs when cog's worker process exits."""
        self.host.setup()
        self.host.shutdown_at_exit()
        self.drain.start()

    # Errors reach cog as the model's own exception, so its "error" reads "ValueError: ...".
    def predict(self, inputs: dict[str, Any]) -> Any:
        with self._logged():
            future = self.host.spawn(self.host.predict, self._valid(inputs))
            while True:
                try:
                    return future.result(timeout=POLL_SECONDS)
                except FutureTimeout:
                    self.drain.check()
                except PredictFailed as exc:
                    raise _original(exc) from None

    def stream(self, inputs: dict[str, Any]) -> Iterator[Any]:
        with self._logged():
            try:
                for chunk in self.host.stream(self._valid(inputs)):
                    yield chunk
                    self.drain.check()
            except PredictFailed as exc:
                raise _original(exc) from None

    async def apredict(self, inputs: dict[str, Any]) -> Any:
        with self._logged():
            task = asyncio.ensure_future(self.host.apredict(self._valid(inputs)))
            try:
                while True:
                    done, _ = await asyncio.wait({task}, timeout=POLL_SECONDS)
                    if done:
                        return task.result()
                    self.drain.check()
            except PredictFailed as exc:
                raise _original(exc) from None

    async def astream(self, inputs: dict[str, Any]) -> AsyncIterator[Any]:
        with self._logged():
            try:
                async for chunk in self.host.astream(self._valid(inputs)):
                    yield chunk
                    self.drain.check()
            except PredictFailed as exc:
                raise _original(exc) from None

    def _valid(self, inputs: dict[str, Any]) -> Any:
        try:
            return self.host.validate({k: v for k, v in inputs.items() if v is not None or k in self._nullable})
        except InvalidInput as exc:
            raise ValueError(f"invalid input: {exc}") from None

    @property
    def _nullable(self) -> set[str]:
        fields = self.host.signature.input_model.model_fields
        return {name for name, field in fields.items() if not field.is_required() and field.default is None}


def _original(exc: PredictFailed) -> BaseException:
    return exc.__cause__ if exc.__cause__ is not None else exc

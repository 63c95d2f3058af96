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
from pathlib import Path
from typing import Any

from ..files import File
from . import logs
from .files import discard
from .host import InvalidInput, ModelHost, PredictFailed
from .jobs import grace_seconds

log = logging.getLogger("gpuserve")
POLL_SECONDS = 0.5
# How long a returned file stays for cog to read and deliver before it is removed.
HANDOVER_SECONDS = 600.0


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


class CogHandover:
    """Hands cog the file predict returned: cog delivers a returned Path itself (a data: URI, or uploaded to
    its --upload-url on Replicate), after run() returns, so the file is removed later, not at once."""

    keeps_files = True

    def deliver(self, path: Path, content_type: str) -> str:
        timer = threading.Timer(HANDOVER_SECONDS, discard, ([path],))
        timer.daemon = True
        timer.start()
        return str(path)


class CogBridge:
    def __init__(self, host: ModelHost) -> None:
        self.host = host
        self.drain = CogDrain(host, os.environ.get("PORT"))
        self._loops = threading.local()
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
        output = self.host.signature.output_type
        if isinstance(output, type) and issubclass(output, File):  # run() returns cog's Path: cog delivers it
            self.host.deliver_files_with(CogHandover())
        self.host.shutdown_at_exit()
        self.drain.start()

    # Errors reach cog as the model's own exception, so its "error" reads "ValueError: ...".
    def predict(self, inputs: dict[str, Any]) -> Any:
        signature = self.host.signature
        if signature.is_async and not signature.streaming:  # on this thread's own loop, kept between predictions:
            return self._loop().run_until_complete(self.apredict(inputs))  # asyncio.run cost more than cog itself
        with self._logged():
            future = self.host.spawn(self.host.predict, self._valid(inputs))
            while True:
                try:
                    return future.result(timeout=POLL_SECONDS)
                except FutureTimeout:
                    self.drain.check()
                except PredictFailed as exc:
                    raise _original(exc) from None

    def _loop(self) -> asyncio.AbstractEventLoop:
        """This thread's event loop for async predicts called from cog's sync run(), made on its first use."""
        loop: asyncio.AbstractEventLoop | None = getattr(self._loops, "loop", None)
        if loop is None:
            loop = self._loops.loop = asyncio.new_event_loop()
        return loop

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
            given = {k: v for k, v in inputs.items() if v is not None or k in self._nullable}
            return self.host.validate(given, platform_files=True)  # cog fetched the Path inputs itself
        except InvalidInput as exc:
            raise ValueError(f"invalid input: {exc}") from None

    @property
    def _nullable(self) -> set[str]:
        fields = self.host.signature.input_model.model_fields
        return {name for name, field in fields.items() if not field.is_required() and field.default is None}


def _original(exc: PredictFailed) -> BaseException:
    return exc.__cause__ if exc.__cause__ is not None else exc

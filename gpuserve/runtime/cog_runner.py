"""The bridge a generated cog runner calls: cog's keyword inputs in, the model's JSON out.

cog validates inputs against .cog/openapi_schema.json before they reach here; the host
validates again, so the model sees exactly what it sees on every other target.

coglet owns SIGTERM and does not pass it to this worker process: it closes its listener and lets the
prediction in flight finish. The bridge watches that listener; once it closes, the model drains like
everywhere else: on_preempt() runs, and a prediction still running `grace` seconds later fails with a
message saying it was interrupted and can be retried, instead of keeping the container alive.

A sync predict runs on the thread coglet starts for the prediction, as a hand-written runner's does (a thread
of gpuserve's own cost a handoff each way: docs/benchmarks.md). At the grace's end it is interrupted the way
coglet cancels one, by an exception raised in that thread (stops.py).
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
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

from ..files import File
from . import logs
from .files import discard
from .host import InvalidInput, ModelHost, PredictFailed
from .jobs import grace_seconds
from .stops import DrainStop, RunningPredicts

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
        self.running: dict[asyncio.Task[Any], asyncio.AbstractEventLoop] = {}  # async predicts, cancelled at it
        self.interrupted: set[asyncio.Task[Any]] = set()
        self.threads = RunningPredicts()  # sync predicts, stopped at it

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
        stop = threading.Timer(self.grace, self.interrupt)  # at the grace's end, however long on_preempt() takes
        stop.daemon = True
        stop.start()
        self.host.preempted()

    def interrupt(self) -> None:
        """The grace ran out: stop every predict still running (one that starts later sees it in check())."""
        for task, loop in list(self.running.items()):
            self.interrupted.add(task)
            loop.call_soon_threadsafe(task.cancel)
        self.threads.stop()

    def check(self) -> None:
        """Raise Interrupted once the grace after the drain has run out."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise self.interruption()

    def interruption(self) -> Interrupted:
        return Interrupted(
            f"the model server is shutting down and this prediction could not finish within "
            f"grace={self.grace:g}s; retry it"
        )


_prediction_var: list[contextvars.ContextVar[Any]] = []  # coglet's, once found


def prediction_id() -> str:
    """coglet's id of the prediction running in this context (its `_coglet_prediction_id`), else a fresh one."""
    if not _prediction_var:
        _prediction_var.extend(var for var in contextvars.copy_context() if var.name == "_coglet_prediction_id")
    value = _prediction_var[0].get(None) if _prediction_var else None
    return str(value) if value else uuid.uuid4().hex


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
        self._loops: list[IdleLoop] = []  # for async predicts called from sync run()
        # no predict() or apredict() frame: each costs a prediction more than in a profile
        self._bare_sync = host.bare and not host.signature.is_async
        self._bare_async = host.bare_async
        fields = host.signature.input_model.model_fields
        self._nullable = {name for name, field in fields.items() if not field.is_required() and field.default is None}
        logs.configure()

    def _log(self, started: float, status: str) -> None:
        """One log line per prediction, with coglet's prediction id as the request id."""
        if not logs.log.isEnabledFor(logging.INFO):  # cog's worker logs at WARNING unless told otherwise
            return
        fields = {
            "request_id": prediction_id(),
            "model": self.host.spec.name,
            "status": status,
            "duration_ms": logs.ms(time.perf_counter() - started),
            "queue_ms": None,
            "batch_size": 1,
        }
        logs.request(fields)

    @contextlib.contextmanager
    def _logged(self) -> Iterator[None]:
        """_log() around a stream."""
        started = time.perf_counter()
        status = "failed"
        try:
            yield
            status = "succeeded"
        finally:
            self._log(started, status)

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
        """The output, from cog's sync run(): on a thread coglet starts for each prediction."""
        signature = self.host.signature
        if signature.is_async and not signature.streaming:
            return self._on_a_loop(inputs)
        return self._here(inputs)

    def _here(self, inputs: dict[str, Any]) -> Any:
        """A sync predict on this thread, which the drain stops at the grace's end."""
        started = time.perf_counter()
        status = "failed"
        try:
            output = self.drain.threads.run(lambda: self._predict(self._valid(inputs)), self.drain.check)
            status = "succeeded"
            return output
        except DrainStop:
            raise self.drain.interruption() from None
        except PredictFailed as exc:
            raise _original(exc) from None
        finally:
            self._log(started, status)

    def _predict(self, value: Any) -> Any:
        """host.predict() of a validated value; for a bare model its call() and encode(), one frame less."""
        if not self._bare_sync:
            return self.host.predict(value)
        try:
            output = self.host.call(value)
        except Exception as exc:
            raise exc from None  # the model's own, its chain cut as _original() cuts it on the other paths
        return self.host.encode(output)

    def _on_a_loop(self, inputs: dict[str, Any]) -> Any:
        """An async predict from sync run(), on an idle event loop kept between predictions: coglet runs each
        prediction on a new thread, and a new loop each time cost about 40 µs (docs/benchmarks.md)."""
        try:
            loop = self._loops.pop()
        except IndexError:
            loop = IdleLoop()
        try:
            return loop.run(self.apredict(inputs))
        finally:
            self._loops.append(loop)

    def stream(self, inputs: dict[str, Any]) -> Iterator[Any]:
        with self._logged():
            try:
                for chunk in self.host.stream(self._valid(inputs)):
                    yield chunk
                    self.drain.check()
            except PredictFailed as exc:
                raise _original(exc) from None

    async def apredict(self, inputs: dict[str, Any]) -> Any:
        """The output, in the caller's task; the drain cancels it at the grace's end, then it fails as Interrupted."""
        started = time.perf_counter()
        status = "failed"
        task = asyncio.current_task()
        assert task is not None
        self.drain.running[task] = asyncio.get_running_loop()
        try:
            self.drain.check()  # after joining `running`: the drain cancels it, or this sees the deadline
            if self._bare_async:  # the model's coroutine in this task, no apredict() frame
                value = self._valid(inputs)
                try:
                    result = await self.host.call(value)
                except Exception as exc:
                    raise exc from None  # the model's own, its chain cut as _original() cuts it on the other paths
                output = self.host.encode(result)
            else:
                output = await self.host.apredict(self._valid(inputs))
            status = "succeeded"
            return output
        except asyncio.CancelledError:
            if task in self.drain.interrupted and task.uncancel() == 0:
                raise self.drain.interruption() from None
            raise
        except PredictFailed as exc:
            raise _original(exc) from None
        finally:
            del self.drain.running[task]
            self.drain.interrupted.discard(task)
            self._log(started, status)

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


class IdleLoop:
    """An event loop that runs one coroutine at a time and remembers the tasks each run creates (its task
    factory), so those still pending at the end are cancelled without asyncio.all_tasks(): a scan of every
    task of every loop, which cost 8-21 µs a prediction (docs/benchmarks.md)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.created: list[asyncio.Task[Any]] = []
        self.loop.set_task_factory(self._task)

    def _task(self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        self.created.append(task)
        return task

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """coro's result. A coroutine that never waits ends in the loop's first turn (stop() before
        run_forever() makes it one turn), which saves run_until_complete()'s second turn and its callbacks."""
        finished = False
        try:
            task = self.loop.create_task(coro)
            self.loop.stop()
            self.loop.run_forever()
            if not task.done():
                self.loop.run_until_complete(task)
            elif len(self.created) > 1:  # the tasks it started get their first step, as run_until_complete() gives
                self.loop.stop()
                self.loop.run_forever()
            finished = True
            return task.result()
        finally:
            self._cancel_left(every_task=not finished)

    def _cancel_left(self, every_task: bool) -> None:
        """Cancel the tasks the run left pending, and let them end. cog's cancel, raised in this thread, can land
        anywhere, even before a task was recorded: after it, every task of the loop."""
        left = asyncio.all_tasks(self.loop) if every_task else [task for task in self.created if not task.done()]
        self.created.clear()
        for task in left:
            task.cancel()
        if left:
            ended = asyncio.gather(*left, return_exceptions=True)
            try:
                self.loop.run_until_complete(ended)
            except RuntimeError:  # "stopped before Future completed": the stop() of a turn the cancel cut short
                self.loop.run_until_complete(ended)


def _original(exc: PredictFailed) -> BaseException:
    return exc.__cause__ if exc.__cause__ is not None else exc

"""Dynamic batching: concurrent requests grouped into one predict call.

A request joins the group that is forming; the group goes to predict when it holds `batch.max_size` items or
its first item has waited `batch.wait_ms`, whichever comes first, and at most `spec.concurrency` groups run at
once (the rest keep forming). The batcher runs on an event loop of its own, in a daemon thread, so every
target's callers use it the same way: the server's and RunPod's event loops, cog's async runner and Modal's
threads. Each caller validates, fetches, encodes and answers its own item; only predict is shared.

An exception from predict fails every request of the group; a gpuserve.ItemError returned in an item's place
fails only that request; a result list of the wrong length fails the group. Each group is logged as one
`batch` line (size, wait, predict time, status) beside the request lines.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ..files import holds_file
from ..spec import ItemError
from . import logs
from .files import discard, file_fields
from .host import ModelHost, PredictFailed

log = logging.getLogger("gpuserve")


class Interrupted(RuntimeError):
    """The container stopped before this item's group could start."""


@dataclass(frozen=True)
class Done:
    """One request's part of a group: the group's size, and its encoded output or its failure."""

    size: int
    output: Any = None
    error: PredictFailed | None = None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.output


@dataclass(frozen=True)
class _Outcome:
    size: int
    value: Any = None  # the item's raw result (an ItemError included)
    error: PredictFailed | None = None


@dataclass
class _Item:
    value: BaseModel
    future: Future[_Outcome]
    arrived: float


class Batcher:
    """Groups one host's requests into predict calls of up to max_size items."""

    def __init__(self, host: ModelHost, predict: Callable[[], Callable[..., Any]]) -> None:
        """predict gives the model's bound predict (running setup() first if it has not run)."""
        batch = host.spec.batch
        assert batch is not None, "a Batcher serves a model with batch=gpuserve.Batch(...)"
        self.host = host
        self.max_size = batch.max_size
        self.wait = batch.wait_ms / 1000
        self.concurrency = host.spec.concurrency
        self._predict = predict
        self.running = 0  # groups in predict now
        self.in_groups = 0  # items in those groups
        self._pending: collections.deque[_Item] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_lock = threading.Lock()
        self._file_inputs = bool(file_fields(host.signature.input_model))
        self._file_outputs = holds_file(host.signature.output_type)  # delivering may upload: off the event loop
        host.track(lambda: len(self._pending) + self.in_groups, self.interrupt)

    # callers -------------------------------------------------------------------------------------------------
    async def apredict(self, value: BaseModel) -> Done:
        """The event-loop form: this item's Done once its group returns. Cancelling it drops an item not yet sent."""
        fetched = await asyncio.to_thread(self.host.fetch_files, value) if self._file_inputs else []
        try:
            future = self.submit(value)
            try:
                outcome = await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                if not future.cancelled():  # its group has it: its input files stay until predict returns
                    kept = fetched
                    future.add_done_callback(lambda _done: discard(kept))
                    fetched = []
                raise
            if self._file_outputs:
                return await asyncio.to_thread(self._finish, outcome)
            return self._finish(outcome)
        finally:
            discard(fetched)

    def predict(self, value: BaseModel) -> Done:
        """The blocking form, for callers on threads of their own (Modal's sync method, `gpuserve run`)."""
        fetched = self.host.fetch_files(value) if self._file_inputs else []
        try:
            return self._finish(self.submit(value).result())
        finally:
            discard(fetched)

    def submit(self, value: BaseModel) -> Future[_Outcome]:
        """Add one validated input to the forming group; its outcome arrives on the future."""
        item = _Item(value, Future(), time.monotonic())
        self._started().call_soon_threadsafe(self._add, item)
        return item.future

    def _finish(self, outcome: _Outcome) -> Done:
        """The caller's own item: its error, its ItemError, or its result encoded (which may fail alone)."""
        if outcome.error is not None:
            return Done(outcome.size, error=outcome.error)
        if isinstance(outcome.value, ItemError):
            return Done(outcome.size, error=PredictFailed(outcome.value))
        try:
            return Done(outcome.size, output=self.host.encode(outcome.value))
        except PredictFailed as exc:
            return Done(outcome.size, error=exc)

    def interrupt(self) -> None:
        """The container is stopping past its grace: items not yet in a group fail as retryable. Any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._fail_pending)

    # the batcher's own loop -----------------------------------------------------------------------------------
    def _started(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            with self._start_lock:
                if self._loop is None:
                    loop = asyncio.new_event_loop()
                    threading.Thread(target=loop.run_forever, name="gpuserve-batcher", daemon=True).start()
                    self._loop = loop
        return self._loop

    def _add(self, item: _Item) -> None:
        self._pending.append(item)
        self._dispatch()

    def _dispatch(self) -> None:
        """Send groups while a predict slot is free and a group is full or due; else wake up when one is due."""
        assert self._loop is not None
        while self.running < self.concurrency and self._pending:
            due = self._pending[0].arrived + self.wait
            now = time.monotonic()
            if len(self._pending) < self.max_size and now < due:
                if self._timer is None:
                    self._timer = self._loop.call_later(due - now, self._on_timer)
                return
            group = self._take()
            if group:
                self.running += 1
                self.in_groups += len(group)
                self._loop.create_task(self._run(group))

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _take(self) -> list[_Item]:
        """Up to max_size items whose callers still wait; from here on their futures cannot be cancelled."""
        group: list[_Item] = []
        while self._pending and len(group) < self.max_size:
            item = self._pending.popleft()
            if item.future.set_running_or_notify_cancel():
                group.append(item)
        return group

    async def _run(self, group: list[_Item]) -> None:
        started = time.monotonic()
        size = len(group)
        outcomes = await self._call(group)
        self.running -= 1
        self.in_groups -= size
        for item, outcome in zip(group, outcomes, strict=True):
            item.future.set_result(outcome)
        failed = outcomes[0].error is not None
        _log_batch(
            model=self.host.spec.name,
            size=size,
            wait_ms=round((started - group[0].arrived) * 1000, 3),
            predict_ms=round((time.monotonic() - started) * 1000, 3),
            status="failed" if failed else "ok",
            item_errors=0 if failed else sum(isinstance(o.value, ItemError) for o in outcomes),
        )
        self._dispatch()

    async def _call(self, group: list[_Item]) -> list[_Outcome]:
        """predict once for the group: its results one per item, or the one failure every item shares."""
        values = [item.value for item in group]
        size = len(values)
        try:
            predict = self._predict()
            if self.host.signature.is_async:
                results = await predict(values)
            else:
                results = await self.host.in_thread(predict, values)
        except BaseException as exc:  # whatever predict raised fails the group; the batcher goes on
            log.error("gpuserve: a batch of %d failed: %s", size, exc, exc_info=exc)
            return [_Outcome(size, error=_failed(exc)) for _ in group]
        if not isinstance(results, list | tuple) or len(results) != size:
            got = f"{len(results)} results" if isinstance(results, list | tuple) else type(results).__name__
            wrong = ValueError(
                f"predict was given {size} items and returned {got}; a batched predict returns a list with one "
                "result per item, in order (gpuserve.ItemError in the place of an item that failed)"
            )
            log.error("gpuserve: ValueError: %s", wrong)
            return [_Outcome(size, error=PredictFailed(wrong)) for _ in group]
        return [_Outcome(size, value=result) for result in results]

    def _fail_pending(self) -> None:
        while self._pending:
            item = self._pending.popleft()
            if item.future.set_running_or_notify_cancel():
                stopped = Interrupted("the container is shutting down and this request's batch could not start; retry")
                item.future.set_result(_Outcome(0, error=PredictFailed(stopped)))


def _failed(exc: BaseException) -> PredictFailed:
    """Each request's own PredictFailed, caused by the one exception, as an unbatched predict's would be."""
    failed = PredictFailed(exc)
    failed.__cause__ = exc
    return failed


def _log_batch(**fields: Any) -> None:
    """One structured line per predict call of a batched model, in the request log's format."""
    if logs.log.isEnabledFor(logging.INFO):
        logs.log.info("batch", extra={"fields": {"event": "batch", **fields}})

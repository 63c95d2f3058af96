"""Predicts as jobs: a job holds its concurrency slot until predict really returns, whatever its caller was told.

A client gets its answer at the deadline (504) or when the container drains past its grace (503, retryable),
but a sync predict cannot be stopped from outside its thread: it keeps its slot until it returns, so a
`concurrency=1` GPU model never runs two predicts at once. A predict still running `grace` seconds past its
timeout marks the container failed on /health, so the platform replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from .host import ModelHost, PredictFailed
from .limits import Gate

log = logging.getLogger("gpuserve")

Kind = Literal["chunk", "result", "error", "end", "timeout", "interrupted"]


@dataclass(frozen=True)
class Event:
    kind: Kind
    value: Any = None


class Job:
    """One predict running under a slot, its output arriving on a queue."""

    def __init__(self, host: ModelHost, value: BaseModel, release: Any) -> None:
        self.host = host
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.stop = False
        self.task = asyncio.ensure_future(self._produce(value))
        self.task.add_done_callback(lambda _task: release())

    async def _produce(self, value: BaseModel) -> None:
        try:
            if self.host.signature.streaming:
                async with contextlib.aclosing(self.host.astream(value)) as chunks:
                    async for chunk in chunks:
                        self.queue.put_nowait(Event("chunk", chunk))
                        if self.stop:
                            return
            else:
                self.queue.put_nowait(Event("result", await self.host.apredict(value)))
        except PredictFailed as exc:
            self.queue.put_nowait(Event("error", exc))
        finally:
            self.queue.put_nowait(Event("end"))

    def abandon(self) -> None:
        """Nobody waits for the output any more: an async predict is cancelled; a sync one stops after its chunk."""
        self.stop = True
        if self.host.signature.is_async:
            self.task.cancel()


def grace_seconds(host: ModelHost) -> float:
    """The spec's grace, unless the operator overrides it with GPUSERVE_GRACE_SECONDS at run time."""
    return float(os.environ.get("GPUSERVE_GRACE_SECONDS", host.spec.grace))


class Jobs:
    """Admits predicts through the gate, runs them as jobs, and answers at the deadline or on interruption."""

    def __init__(self, host: ModelHost, gate: Gate, grace: float) -> None:
        self.host = host
        self.gate = gate
        self.grace = grace
        self.answering = 0  # requests that have not had their answer yet: what a drain waits for
        self._interrupted: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchers: set[asyncio.Task[None]] = set()
        host.track(lambda: self.answering, self._interrupt_from_any_thread)

    @property
    def interrupted(self) -> asyncio.Event:
        if self._interrupted is None:  # made on the serving loop
            self._interrupted = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        return self._interrupted

    def _interrupt_from_any_thread(self) -> None:
        if self._loop is not None and self._interrupted is not None:
            self._loop.call_soon_threadsafe(self._interrupted.set)

    @contextlib.asynccontextmanager
    async def answering_one(self) -> AsyncIterator[None]:
        self.answering += 1
        try:
            yield
        finally:
            self.answering -= 1

    async def start(self, value: BaseModel) -> Job | Event:
        """A running job, or Event("interrupted") when the drain ended the wait for a slot. Raises QueueFull."""
        acquire = asyncio.ensure_future(self.gate.acquire())
        interrupted = asyncio.ensure_future(self.interrupted.wait())
        await asyncio.wait({acquire, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        interrupted.cancel()
        if not acquire.done():
            acquire.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquire
            if not acquire.cancelled() and acquire.exception() is None:
                self.gate.release()  # it was granted while we were cancelling it
            return Event("interrupted")
        acquire.result()  # QueueFull propagates
        return Job(self.host, value, self.gate.release)

    async def next(self, job: Job, deadline: float) -> Event:
        """The job's next event, or timeout at the deadline, or interrupted when the drain's grace ran out."""
        get = asyncio.ensure_future(job.queue.get())
        interrupted = asyncio.ensure_future(self.interrupted.wait())
        remaining = max(0.0, deadline - time.monotonic())
        done, _ = await asyncio.wait({get, interrupted}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        interrupted.cancel()
        if get in done:
            return get.result()
        get.cancel()
        if interrupted in done:
            job.abandon()
            return Event("interrupted")
        self.overdue(job)
        return Event("timeout")

    def overdue(self, job: Job) -> None:
        """The client was told 504; the predict keeps its slot, and the container fails if it runs past grace."""
        job.abandon()
        watcher = asyncio.ensure_future(self._watch(job))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, job: Job) -> None:
        done, _ = await asyncio.wait({job.task}, timeout=self.grace)
        if not done:
            self.host.mark_stuck(
                f"a predict is still running {self.grace:g} s after its timeout of {self.host.spec.timeout} s; "
                "this container should be replaced"
            )

"""Predicts as jobs: a job holds its concurrency slot until predict really returns, whatever its caller was told.

A client gets its answer at the deadline (504) or when the container drains past its grace (503, retryable),
but a sync predict cannot be stopped from outside its thread: it keeps its slot until it returns, so a
`concurrency=1` GPU model never runs two predicts at once. A predict still running `grace` seconds past its
timeout marks the container failed on /health, so the platform replaces it.

A batched model's job waits for its item's part of a group (runtime/batcher.py); it holds its slot until the
group's predict returns, like a sync predict, and knows the size of the group it ran in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from .host import InvalidInput, ModelHost, PredictFailed
from .limits import Gate

log = logging.getLogger("gpuserve")

Kind = Literal["chunk", "result", "error", "end", "timeout", "interrupted", "gone"]


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
        self.batch_size = 1  # inputs in the predict call that answered it: its group's size when batched
        self.task = asyncio.ensure_future(self._produce(value))
        self.task.add_done_callback(lambda _task: release())

    async def _produce(self, value: BaseModel) -> None:
        try:
            if self.host.batcher is not None:
                done = await self.host.batcher.apredict(value)
                self.batch_size = done.size
                self.queue.put_nowait(Event("result", done.result()))
            elif self.host.signature.streaming:
                async with contextlib.aclosing(self.host.astream(value)) as chunks:
                    async for chunk in chunks:
                        self.queue.put_nowait(Event("chunk", chunk))
                        if self.stop:
                            return
            else:
                self.queue.put_nowait(Event("result", await self.host.apredict(value)))
        except (PredictFailed, InvalidInput) as exc:  # InvalidInput: a file input refused while fetching it
            self.queue.put_nowait(Event("error", exc))
        finally:
            self.queue.put_nowait(Event("end"))

    def abandon(self) -> None:
        """Nobody waits for the output any more: an async predict is cancelled; a sync one stops after its chunk.

        A batched one is neither: its group runs on for the others, and the job keeps its slot until it returns.
        """
        self.stop = True
        if self.host.signature.is_async and self.host.batcher is None:
            self.task.cancel()


class _Answering:
    """Jobs.answering_one(): a class, not a generator context manager, as it wraps every request."""

    __slots__ = ("jobs",)

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs

    async def __aenter__(self) -> None:
        self.jobs.answering += 1

    async def __aexit__(self, *exc: object) -> None:
        self.jobs.answering -= 1


class InlineJob(Job):
    """An async predict, neither batched nor a stream, run in the request's own task by Jobs.next(): a task, a
    queue and a wake-up per request cost as much as the rest of a no-op request (docs/benchmarks.md). Like a Job
    it holds its slot until predict returns, and a timeout or the drain cancels predict, as abandon() does."""

    def __init__(self, host: ModelHost, value: BaseModel, release: Any) -> None:  # starts nothing
        self.host = host
        self.value = value
        self.release = release
        self.stop = False
        self.batch_size = 1
        self.ran = False

    def abandon(self) -> None:
        self.stop = True


def _hung_up(watch: asyncio.Future[Any]) -> bool:
    """The client_gone() watch returned: the client hung up (a watch that failed says nothing)."""
    return watch.done() and not watch.cancelled() and watch.exception() is None


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
        self._woken: set[asyncio.Future[None]] = set()  # requests waiting for a job to end, woken by interrupt()
        self._inline: dict[asyncio.Task[Any], Callable[[Kind], None]] = {}  # requests running an InlineJob
        host.track(lambda: self.answering, self._interrupt_from_any_thread)

    @property
    def interrupted(self) -> asyncio.Event:
        if self._interrupted is None:  # made on the serving loop
            self._interrupted = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        return self._interrupted

    def interrupt(self) -> None:
        """The drain's grace ran out: every request still waiting for its job is answered as interrupted."""
        self.interrupted.set()
        for woken in self._woken:
            if not woken.done():
                woken.set_result(None)
        for stop in list(self._inline.values()):
            stop("interrupted")

    def _interrupt_from_any_thread(self) -> None:
        if self._loop is not None and self._interrupted is not None:
            self._loop.call_soon_threadsafe(self.interrupt)

    def answering_one(self) -> _Answering:
        """`async with` it while a request has no answer yet: a drain waits for these."""
        return _Answering(self)

    async def start(self, value: BaseModel, client_gone: Callable[[], Awaitable[Any]] | None = None) -> Job | Event:
        """A running job, Event("interrupted") when the drain ended the wait for a slot, or Event("gone") when
        `client_gone()` returned first: a client that hung up while queued gives its place to the next one
        instead of having a GPU run its predict for nobody. Raises QueueFull."""
        granted = self.gate.enqueue()  # QueueFull propagates
        watch = None
        if client_gone is not None and not granted.done():  # only a queued request watches: no cost otherwise
            watch = asyncio.ensure_future(client_gone())

            def leave_queue(watch: asyncio.Future[Any]) -> None:
                if _hung_up(watch) and not granted.done():
                    self.gate.withdraw(granted)  # which wakes the wait below

            watch.add_done_callback(leave_queue)
        try:
            await self._until(granted)
        except BaseException:  # the request itself was cancelled: its place (or slot) goes to the next one
            self.gate.withdraw(granted)
            raise
        finally:
            if watch is not None and not watch.done():
                watch.cancel()
        if watch is not None and _hung_up(watch):
            self.gate.withdraw(granted)  # its place, or the slot that came at the same moment
            return Event("gone")
        if not granted.done():
            self.gate.withdraw(granted)
            return Event("interrupted")
        signature = self.host.signature
        if signature.is_async and not signature.streaming and self.host.batcher is None:
            return InlineJob(self.host, value, self.gate.release)
        return Job(self.host, value, self.gate.release)

    async def next(self, job: Job, deadline: float) -> Event:
        """The job's next event, or timeout at the deadline, or interrupted when the drain's grace ran out."""
        if isinstance(job, InlineJob):
            if job.ran:
                return Event("end")
            job.ran = True
            return await self._run_inline(job, deadline)
        if not job.queue.empty():
            return job.queue.get_nowait()
        if not self.host.signature.streaming:
            return await self._outcome(job, deadline)
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

    async def _until(self, done: asyncio.Future[Any], deadline: float | None = None) -> None:
        """Wait until `done` is done, interrupt() is called, or the deadline passes: one future and at most one
        timer, where asyncio.wait on two tasks cost more than the rest of a no-op request (docs/benchmarks.md)."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake(_: Any = None) -> None:
            if not woken.done():
                woken.set_result(None)

        if self.interrupted.is_set() or done.done():
            return
        done.add_done_callback(wake)
        timer = None if deadline is None else loop.call_at(loop.time() + max(0.0, deadline - time.monotonic()), wake)
        self._woken.add(woken)
        try:
            await woken
        finally:
            if timer is not None:
                timer.cancel()
            self._woken.discard(woken)
            done.remove_done_callback(wake)

    async def _run_inline(self, job: InlineJob, deadline: float) -> Event:
        """Run the job's predict here; at the deadline or on interrupt() it is cancelled, and the slot is freed
        once it has returned."""
        task = asyncio.current_task()
        assert task is not None
        if self.interrupted.is_set():
            job.release()
            return Event("interrupted")
        loop = asyncio.get_running_loop()
        stopped: list[Kind] = []

        def stop(kind: Kind) -> None:
            if not stopped:
                stopped.append(kind)
                task.cancel()

        timer = loop.call_at(loop.time() + max(0.0, deadline - time.monotonic()), stop, "timeout")
        self._inline[task] = stop
        try:
            return Event("result", await self.host.apredict(job.value))
        except (PredictFailed, InvalidInput) as exc:
            return Event("error", exc)
        except asyncio.CancelledError:
            if stopped and task.uncancel() == 0:  # ours alone: answer it; anyone else's goes on up
                return Event(stopped[0])
            raise
        finally:
            timer.cancel()
            del self._inline[task]
            job.release()

    async def _outcome(self, job: Job, deadline: float) -> Event:
        """next() for a job that is not a stream: all its events arrive as its task ends."""
        await self._until(job.task, deadline)
        if not job.queue.empty():
            return job.queue.get_nowait()
        if self.interrupted.is_set():
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

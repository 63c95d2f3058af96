"""The RunPod serverless handler: RunPod's job format over the same ModelHost every target uses.

RunPod's worker loop owns SIGTERM/SIGINT (it stops taking jobs, lets those in flight finish, then returns):
gpuserve wraps that handler, never replaces it, to start its drain first (jobs past `grace` end as a
retryable error). The model's shutdown() runs once start() returns. A job RunPod stops (stop_job) keeps
its place until its predict really returns.

A sync predict that runs alone (concurrency 1, no batch, no stream) runs on RunPod's loop, as a minimal handler
runs it: a handoff to a thread and back cost a quarter of a no-op job (docs/benchmarks.md). A stop RunPod sends
meanwhile is seen only once the predict returns; the drain stops the predict as on cog (stops.py), and a watchdog
thread replaces the worker when a predict outlives its timeout by the grace.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from . import logs
from .host import InvalidInput, ModelHost, PredictFailed
from .jobs import Event, Job, grace_seconds
from .stops import DrainStop, RunningPredicts

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
    """Handlers in the forms runpod.serverless.start takes, cancel-safe, with gpuserve's drain around RunPod's."""

    watch_seconds = 1.0  # how often the watchdog looks at a sync predict on RunPod's loop

    def __init__(self, host: ModelHost) -> None:
        self.host = host
        self.grace = grace_seconds(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._interrupted: asyncio.Event | None = None
        self._draining = False
        self._woken: set[asyncio.Future[None]] = set()  # jobs waiting for their predict, woken by _interrupt()
        self._inline: set[asyncio.Task[Any]] = set()  # jobs running predict in RunPod's task, cancelled at the end
        self._stopped: set[asyncio.Task[Any]] = set()  # of those, the ones _interrupt() cancelled
        self._cancelled_at: dict[asyncio.Task[Any], float] = {}  # ones seen cancelled by _watch_cancelled()
        self._watching: asyncio.TimerHandle | None = None
        signature = host.signature
        self._direct = not signature.streaming and host.batcher is None
        self._async = signature.is_async
        self._bare = host.bare_async  # no apredict() frame: each costs a job more than it does in a profile
        self._on_loop = self._direct and not self._async and host.spec.slots == 1  # a sync predict on RunPod's loop
        self._bare_here = self._on_loop and host.bare  # and one without predict()'s frame
        self._on_loop_predicts = RunningPredicts()
        self._deadline: float | None = None  # the drain's end, for a predict on RunPod's loop to check
        self._watchdog: threading.Thread | None = None
        self._closed = threading.Event()  # ends the watchdog
        self._drain_lock = threading.RLock()  # begin_drain() once, from the signal handler or the watchdog
        self._runpod_stopping = False  # RunPod's own handler has run: it takes no more jobs
        logs.configure()

    @classmethod
    def load(cls, app_ref: str) -> RunpodWorker:
        return cls(ModelHost.from_ref(app_ref))

    def setup(self) -> None:
        """Run the model's setup() once, before the worker takes its first job."""
        self.host.setup()

    def shutdown(self) -> None:
        """Run the model's shutdown() once (an interrupted predict may still run: its thread ends with us)."""
        self._closed.set()
        logs.flush_all()  # RunPod's loop has ended: the last jobs' lines, before the model's shutdown takes time
        self.host.shutdown()

    def config(self, argv: list[str] | None = None) -> dict[str, Any]:
        """The dict for runpod.serverless.start: the handler in the form this mode needs, and concurrency."""
        argv = sys.argv if argv is None else argv
        streaming = self.host.signature.streaming and not _local_test_mode(argv)
        handler = self.stream if streaming else self._answer if self._direct else self.handle  # one frame less
        config: dict[str, Any] = {"handler": handler}
        if streaming:
            config["return_aggregate_stream"] = True  # /runsync answers with the chunks as a list
        if self.host.spec.slots > 1:  # batched: enough jobs at once to fill each group (docs/batching.md)
            config["concurrency_modifier"] = self.concurrency_modifier
        self._wrap_runpod_shutdown()
        return config

    def concurrency_modifier(self, current: int) -> int:
        return self.host.spec.slots

    # the drain: RunPod's signal handler stays; gpuserve's runs first -------------------------------------------
    def _wrap_runpod_shutdown(self) -> None:
        try:
            from runpod.serverless.modules import rp_scale
        except ImportError:  # not inside a RunPod worker
            return
        original = rp_scale.JobScaler.handle_shutdown
        if getattr(original, "gpuserve_drain", False):
            return
        worker = self

        def handle_shutdown(scaler: Any, signum: int, frame: Any) -> None:
            worker.begin_drain(f"signal {signum}")
            original(scaler, signum, frame)
            worker._runpod_stopping = True

        handle_shutdown.gpuserve_drain = True  # type: ignore[attr-defined]
        rp_scale.JobScaler.handle_shutdown = handle_shutdown

    def begin_drain(self, reason: str) -> None:
        """Stop taking work; jobs get `grace` seconds, then answer as interrupted. Any thread may call it."""
        with self._drain_lock:
            if self._draining:
                return
            self._draining = True
        log.info("gpuserve: draining (%s), grace %g s", reason, self.grace)
        self._deadline = time.monotonic() + self.grace
        self.host.drain()
        threading.Thread(target=self.host.preempted, name="gpuserve-on-preempt", daemon=True).start()
        if self._on_loop:  # RunPod's loop is busy while such a predict runs: its timer could not stop it
            stop = threading.Timer(self.grace, self._on_loop_predicts.stop)
            stop.daemon = True
            stop.start()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.call_later, self.grace, self._interrupt)

    def _interrupt(self) -> None:
        self.interrupted.set()
        for woken in self._woken:
            if not woken.done():
                woken.set_result(None)
        for task in self._inline - self._stopped:
            self._stopped.add(task)
            task.cancel()

    @property
    def interrupted(self) -> asyncio.Event:
        if self._interrupted is None:
            self._interrupted = asyncio.Event()
        return self._interrupted

    # jobs -----------------------------------------------------------------------------------------------------
    async def handle(self, job: dict[str, Any]) -> Any:
        """One job in, its output (or RunPod's {"error": ...}) out."""
        if self._direct:
            return await self._answer(job)
        chunks: list[Any] = []
        async for event in self._events(job):
            if event.kind in ("chunk", "result"):
                chunks.append(event.value)
            elif event.kind == "error":
                return event.value
        return chunks if self.host.signature.streaming else chunks[0]

    async def _answer(self, job: dict[str, Any]) -> Any:
        """handle() for a predict that is neither a stream nor batched, in RunPod's own task for the job: no task,
        queue or wake-up of its own, so an async predict that never waits answers within one turn of the loop, as
        a hand-written handler does (each suspension resumes RunPod's whole ASGI stack: docs/benchmarks.md).

        The drain's end cancels the job's task (answered Interrupted); a job RunPod stops (CancelledError) keeps
        its place until its predict really returns, as _settle() holds a Job, and _watch_cancelled() marks the
        worker stuck when an async predict swallows the cancel for longer than the grace. A sync predict that
        runs alone runs right here (_predict_here), one beside others on a predict thread.
        """
        started = time.perf_counter()
        task = asyncio.current_task()
        assert task is not None
        loop = self._loop = task.get_loop()
        status, batch_size, future = "cancelled", None, None
        try:
            try:
                value = self.host.validate(job.get("input"))
            except InvalidInput as exc:
                status = "failed"
                return {"error": f"invalid input: {exc}"}
            if self._interrupted is not None and self._interrupted.is_set():
                status = "failed"
                return self._interruption()
            batch_size = 1
            self._inline.add(task)
            if self._watching is None and self._async:
                self._watching = loop.call_later(1.0, self._watch_cancelled)
            try:
                if self._bare:  # cancelled in place: it has returned when the cancel reaches us
                    try:
                        result = await self.host.call(value)
                    except Exception as exc:
                        raise PredictFailed(exc) from exc
                    output = self.host.encode(result)
                elif self._async:
                    output = await self.host.apredict(value)
                elif self._on_loop:
                    output = self._predict_here(value)
                else:  # validated already, so host.predict goes straight to the model's predict, on a predict thread
                    future = self.host.spawn(self.host.predict, value)
                    output = await asyncio.wrap_future(future)
            except DrainStop:
                status = "failed"
                return self._interruption()
            except asyncio.CancelledError:
                if task in self._stopped and task.uncancel() == 0:  # ours alone: answer it; anyone else's goes up
                    status = "failed"
                    return self._interruption()
                if future is not None:
                    await self._settle_thread(future, job.get("id"))
                raise
            except PredictFailed as failed:
                status = "failed"
                log.error("gpuserve: job %s failed: %s", job.get("id"), failed, exc_info=failed.__cause__)
                return {"error": f"{failed.type}: {failed.message}"}
            except InvalidInput as exc:  # a file input refused while fetching it
                status = "failed"
                return {"error": f"{exc.kind}: {exc}"}
            finally:
                self._inline.discard(task)
            if task in self._stopped:  # the predict swallowed the drain's cancel and returned: its output stands
                task.uncancel()
            if task.cancelling():  # it swallowed RunPod's stop: the job still stops
                raise asyncio.CancelledError
            status = "completed"
            return output
        finally:
            self._stopped.discard(task)
            self._log(job, started, status, batch_size, loop)

    def _predict_here(self, value: Any) -> Any:
        """The sync predict, here on RunPod's loop; the drain raises DrainStop in it at the grace's end.

        The predict sees no event loop, running or current, as on a predict thread everywhere else: asyncio.run(),
        or a loop of its own made when get_event_loop() finds none, works in it."""
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch_on_loop, name="gpuserve-watchdog", daemon=True)
            self._watchdog.start()
        return self._on_loop_predicts.run(lambda: self._without_loop(value), self._check_deadline)

    def _without_loop(self, value: Any) -> Any:
        running = asyncio._get_running_loop()  # public: in asyncio.__all__
        try:  # unset inside the try: the finally sets it back, whatever lands in between
            asyncio._set_running_loop(None)
            asyncio.set_event_loop(None)
            if not self._bare_here:
                return self.host.predict(value)
            try:
                output = self.host.call(value)
            except Exception as exc:
                raise PredictFailed(exc) from exc
            return self.host.encode(output)
        finally:
            asyncio._set_running_loop(running)
            asyncio.set_event_loop(running)  # asyncio.run() made it the thread's loop; a nested one unset it

    def _check_deadline(self) -> None:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise DrainStop  # once joined: the drain stops it, or this sees its end

    def _watch_on_loop(self) -> None:
        """Once a second: a predict on RunPod's loop still running `grace` seconds past its timeout is stuck, and
        RunPod's stop cannot reach it there. The worker is marked failed and drained, as _settle_thread() does
        for a predict on a thread; if the drain's DrainStop cannot land either (a call into C that never
        returns), the process exits a grace later, so RunPod replaces it."""
        stuck_after = self.host.spec.timeout + self.grace
        while not self._closed.wait(self.watch_seconds):
            running = self._on_loop_predicts.longest()
            if running is None or running < stuck_after:
                continue
            if self.host.state != "failed":
                self.host.mark_stuck(f"a predict is still running {self.grace:g} s after its timeout")
                self.begin_drain("stuck predict")  # now, though RunPod's handler waits for the predict's next line
                os.kill(os.getpid(), signal.SIGTERM)  # RunPod's own drain: it stops taking jobs
                if self._loop is not None:  # the handler runs in the predict: DrainStop may cut it short
                    self._loop.call_soon_threadsafe(self._stop_runpod)
            elif running >= stuck_after + 2 * self.grace:
                log.error("gpuserve: the predict did not stop at the drain's end; exiting so RunPod replaces us")
                logs.flush_all()  # os._exit runs no atexit
                os._exit(1)

    def _stop_runpod(self) -> None:
        """On the loop, once the stuck predict has returned however it ended: signal again unless RunPod's own
        handler has run, so that RunPod stops taking jobs."""
        if not self._runpod_stopping:
            os.kill(os.getpid(), signal.SIGTERM)

    def _watch_cancelled(self) -> None:
        """Once a second while async jobs run in RunPod's tasks: a predict still running `grace` seconds after its
        task was cancelled (RunPod's stop, or the drain's) swallowed the cancel. Marked stuck and the worker
        stopped, as _settle() does for a Job's predict, so the platform replaces it."""
        now = time.monotonic()
        for task in self._inline:
            if task.cancelling():
                since = self._cancelled_at.setdefault(task, now)
                if now - since >= self.grace and self.host.state != "failed":
                    self.host.mark_stuck(f"a job was stopped but its predict still runs {self.grace:g} s later")
                    os.kill(os.getpid(), signal.SIGTERM)  # RunPod's own drain: the worker exits and is replaced
        self._cancelled_at = {task: since for task, since in self._cancelled_at.items() if task in self._inline}
        self._watching = self._loop.call_later(1.0, self._watch_cancelled) if self._inline and self._loop else None

    async def _settle_thread(self, future: Any, job_id: Any) -> None:
        """_settle() for a sync predict run by _answer(): hold the stopped job until its thread returns."""
        done, _ = await asyncio.wait({asyncio.wrap_future(future)}, timeout=self.grace)
        if not done:
            self.host.mark_stuck(f"job {job_id} was stopped but its predict still runs {self.grace:g} s later")
            os.kill(os.getpid(), signal.SIGTERM)  # RunPod's own drain: the worker exits and is replaced

    def _interrupted_message(self) -> str:
        return f"the worker is shutting down and this job could not finish within grace={self.grace:g}s"

    def _interruption(self) -> dict[str, str]:
        return {"error": f"Interrupted: {self._interrupted_message()}; retry it"}

    async def stream(self, job: dict[str, Any]) -> AsyncIterator[Any]:
        """A generator handler: each chunk is posted to RunPod's stream as it is made."""
        async for event in self._events(job):
            yield event.value

    async def _events(self, job: dict[str, Any]) -> AsyncIterator[Event]:
        """The job's events, and one log line per job with RunPod's job id as the request id."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        status = "cancelled"
        running: list[Job] = []  # the job's predict, once it runs: it knows its batch's size
        try:
            async for event in self._job_events(job, running):
                if event.kind == "error":
                    status = "failed"
                yield event
            if status == "cancelled":
                status = "completed"
        finally:
            self._log(job, started, status, running[0].batch_size if running else None, loop)

    def _log(
        self, job: dict[str, Any], started: float, status: str, batch_size: int | None, loop: asyncio.AbstractEventLoop
    ) -> None:
        """The job's request log line, with RunPod's job id as the request id, written with others after RunPod
        sends the answer (`loop`: the one running the job)."""
        fields = {
            "request_id": str(job.get("id")),
            "model": self.host.spec.name,
            "status": status,
            "duration_ms": logs.ms(time.perf_counter() - started),
            "queue_ms": None,
            "batch_size": batch_size,
        }
        logs.request(fields, loop=loop)  # after RunPod sends the answer, not before (docs/benchmarks.md)

    async def _job_events(self, job: dict[str, Any], started: list[Job]) -> AsyncIterator[Event]:
        """The job's outputs as events; an error event carries RunPod's {"error": ...} and ends it."""
        self._loop = asyncio.get_running_loop()
        try:
            value = self.host.validate(job.get("input"))
        except InvalidInput as exc:
            yield Event("error", {"error": f"invalid input: {exc}"})
            return
        running = Job(self.host, value, release=lambda: None)
        started.append(running)
        try:
            while True:
                event = await self._next(running)
                if event.kind == "end":
                    return
                if event.kind == "error" and isinstance(event.value, InvalidInput):  # a file input refused
                    yield Event("error", {"error": f"{event.value.kind}: {event.value}"})
                    return
                if event.kind == "error":
                    failed = event.value
                    log.error("gpuserve: job %s failed: %s", job.get("id"), failed, exc_info=failed.__cause__)
                    yield Event("error", {"error": f"{failed.type}: {failed.message}"})
                    return
                if event.kind == "interrupted":
                    yield Event("error", {"error": f"Interrupted: {self._interrupted_message()}; retry it"})
                    return
                yield event
        except asyncio.CancelledError:  # RunPod stopped the job (cancelled, or past its execution timeout)
            await self._settle(running, job.get("id"))
            raise

    async def _next(self, running: Job) -> Event:
        """The job's next event, or interrupted once the drain's grace ran out."""
        if not running.queue.empty():
            return running.queue.get_nowait()
        if not self.host.signature.streaming:  # all its events arrive as its task ends: one future waits for that
            return await self._outcome(running)
        get = asyncio.ensure_future(running.queue.get())
        interrupted = asyncio.ensure_future(self.interrupted.wait())
        try:
            done, _ = await asyncio.wait({get, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            interrupted.cancel()
        if get in done:
            return get.result()
        get.cancel()
        running.abandon()
        return Event("interrupted")

    async def _outcome(self, running: Job) -> Event:
        """_next() for a job that is not a stream, without a task and asyncio.wait per event (docs/benchmarks.md)."""
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake(_: Any = None) -> None:
            if not woken.done():
                woken.set_result(None)

        if self.interrupted.is_set():
            wake()
        running.task.add_done_callback(wake)
        self._woken.add(woken)
        try:
            await woken
        finally:
            self._woken.discard(woken)
            running.task.remove_done_callback(wake)
        if not running.queue.empty():
            return running.queue.get_nowait()
        running.abandon()
        return Event("interrupted")

    async def _settle(self, running: Job, job_id: Any) -> None:
        """Hold the stopped job until predict really returns, so the next job does not run beside it."""
        running.abandon()
        done, _ = await asyncio.wait({running.task}, timeout=self.grace)
        if not done:
            self.host.mark_stuck(f"job {job_id} was stopped but its predict still runs {self.grace:g} s later")
            os.kill(os.getpid(), signal.SIGTERM)  # RunPod's own drain: the worker exits and is replaced

"""Serve one model with uvicorn, and drain it the same way whatever ends the container.

SIGTERM (RunPod, Docker, Kubernetes), SIGINT (Modal's preemption, Ctrl-C) or a spot-interruption notice:
/health says draining at once, the listener stays open and answers new predicts 503 with Retry-After,
what is in flight finishes within the grace period (what cannot is answered 503 Interrupted, retryable),
then the model's shutdown() runs once and the process exits 0. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from types import FrameType
from typing import Any

import uvicorn

from .host import ModelHost
from .jobs import Jobs
from .server import create_app
from .spot import watch_for_spot_notice

log = logging.getLogger("gpuserve")
# What is left of the connections after the drain: answers already sent, so a short wait is enough.
CLOSE_SECONDS = 5


class DrainingServer(uvicorn.Server):
    """uvicorn, with the platform's stop signal turned into gpuserve's drain instead of an immediate close."""

    def __init__(self, config: uvicorn.Config, host: ModelHost, jobs: Jobs) -> None:
        super().__init__(config)
        self.host = host
        self.jobs = jobs
        self.draining = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started:
            watch_for_spot_notice(self.begin_drain, self.host.spec.spot_notices)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's: that closes the listener at once and re-raises the signal at exit (status 143).
        if self.draining:
            log.warning("gpuserve: second %s: stopping now", signal.Signals(sig).name)
            self.should_exit = self.force_exit = True
            return
        self.begin_drain(f"signal {signal.Signals(sig).name}")

    def begin_drain(self, reason: str) -> None:
        """Start the drain from any thread (a signal handler, the spot-notice watcher)."""
        if self._loop is None:  # before the loop runs: nothing to drain
            self.should_exit = True
            return
        self._loop.call_soon_threadsafe(self._start_drain, reason)

    def _start_drain(self, reason: str) -> None:
        if self.draining:
            return
        self.draining = True
        drain = asyncio.ensure_future(self._drain(reason))
        drain.add_done_callback(lambda task: task.cancelled() or task.exception())

    async def _drain(self, reason: str) -> None:
        grace = self.jobs.grace
        log.info("gpuserve: draining (%s): %d request(s) in flight, grace %g s", reason, self.jobs.answering, grace)
        self.host.drain()
        preempt = asyncio.ensure_future(asyncio.to_thread(self.host.preempted))
        deadline = time.monotonic() + grace
        while self.jobs.answering and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.jobs.answering:
            left = self.jobs.answering
            log.warning("gpuserve: %d request(s) still running after %g s: answering them as interrupted", left, grace)
            self.jobs.interrupt()
            answered_by = time.monotonic() + CLOSE_SECONDS
            while self.jobs.answering and time.monotonic() < answered_by:
                await asyncio.sleep(0.05)
        await asyncio.wait({preempt}, timeout=max(0.0, deadline - time.monotonic()))
        log.info("gpuserve: drained; closing the listener")
        self.should_exit = True


def serve(app_ref: str, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Load APP and serve it until the platform stops the container; then drain, run shutdown() and exit 0."""
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    model_host = ModelHost.from_ref(app_ref)
    app = create_app(model_host)
    jobs: Jobs = app.app.state.jobs  # create_app wraps the FastAPI app in its body limit
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=CLOSE_SECONDS,
        lifespan="on",
        **app.app.state.limits.uvicorn(),  # header size, keep-alive, connections: gpuserve.Limits
    )
    DrainingServer(config, model_host, jobs).run()
    if model_host.busy_threads:  # answered as interrupted, still in the model's code: daemon threads end with us
        log.warning("gpuserve: exiting with %d predict(s) still running in the model", model_host.busy_threads)

"""runpod: handler.py run by the real runpod SDK, in a virtualenv of the rendered requirements.txt.

A model that answers once is called through RunPod's local API (`--rp_serve_api`, POST /runsync). A streaming one
runs in RunPod's production worker loop against a job-queue stand-in, which receives each chunk as the worker posts
it (the local API only hands back the chunks joined, and never marks a stream's failure FAILED).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..client import Client
from ..compare import Outcome
from ..processes import TargetDown, free_port, started, wait_ready
from ..venvs import requirement_lines
from .base import Call, Context, Endpoint, timed
from .runpod_queue import JobQueue

INVALID_PREFIX = "invalid input:"  # how gpuserve's RunPod handler words a refusal (gpuserve/runtime/runpod_worker.py)


class RunpodRunner:
    target = "runpod"

    def endpoints(self, streaming: bool) -> list[str]:
        return ["runpod worker" if streaming else "runpod"]

    def requirements(self, directory: Path) -> list[str]:
        return requirement_lines(directory / "requirements.txt")

    @contextmanager
    def serve(self, context: Context) -> Iterator[list[Endpoint]]:
        if context.streaming:
            with self._worker_loop(context) as call:
                yield [Endpoint("runpod worker", call)]
        else:
            with self._local_api(context) as call:
                yield [Endpoint("runpod", call)]

    @contextmanager
    def _local_api(self, context: Context) -> Iterator[Call]:
        port = free_port()
        command = [context.python, "handler.py", "--rp_serve_api", "--rp_api_host", "127.0.0.1"]
        command += ["--rp_api_port", str(port)]
        log = context.work / "runpod.log"
        client = Client(port, context.call_timeout)
        try:
            with started(command, context.directory, context.env, log) as proc:
                what = "runpod --rp_serve_api: GET /openapi.json"
                wait_ready(lambda: client.get("/openapi.json").status == 200, proc, log, context.start_timeout, what)

                def call(value: Any) -> Outcome:
                    started_at = time.perf_counter()
                    answer = client.post("/runsync", {"input": value})
                    if answer.status == 422:  # RunPod's own API refused the request's shape
                        return timed(started_at, "invalid", message=f"HTTP 422 {answer.body[:200]!r}")
                    body = answer.json()
                    return _job_outcome(body, started_at, completed=body.get("status") == "COMPLETED")

                yield call
        finally:
            client.close()

    @contextmanager
    def _worker_loop(self, context: Context) -> Iterator[Call]:
        log = context.work / "runpod-worker.log"
        ids = (f"job-{n}" for n in itertools.count(1))
        with JobQueue() as queue:
            env = context.env | queue.env()
            with started([context.python, "handler.py"], context.directory, env, log) as proc:
                what = "runpod worker loop: its first job request"
                wait_ready(lambda: queue.takes > 0, proc, log, context.start_timeout, what)

                def call(value: Any) -> Outcome:
                    started_at = time.perf_counter()
                    job_id = next(ids)
                    queue.add(job_id, value)
                    done = queue.wait_done(job_id, context.call_timeout)
                    if done is None:
                        if proc.poll() is not None:
                            raise TargetDown(f"the runpod worker exited with {proc.returncode}")
                        return timed(started_at, "error", message=f"no result for {job_id} in {context.call_timeout} s")
                    chunks = queue.streamed.get(job_id, [])
                    return _job_outcome({**done, "output": chunks}, started_at, completed="error" not in done)

                yield call


def _job_outcome(body: dict[str, Any], started_at: float, completed: bool) -> Outcome:
    if completed:
        return timed(started_at, "output", body.get("output"))
    error = body.get("error")
    if not isinstance(error, str):
        return timed(started_at, "error", message=f"neither an output nor an error: {str(body)[:200]}")
    return timed(started_at, "invalid" if error.startswith(INVALID_PREFIX) else "failed", message=error)

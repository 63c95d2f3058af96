"""The drain where the platform owns the listener: RunPod's worker loop (job-queue stand-in) and cog's server.

What docs/lifecycle.md promises there: jobs in flight finish and post their results, a job past the grace
ends as a retryable failure, a stopped job keeps its place until its predict returns, shutdown() runs once,
and the process exits 0. The model's sync predict runs alone, so on RunPod it runs on RunPod's own loop.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gpuserve.adapters._common import PINS
from gpuserve.build import build
from tests.apps import ROOT
from tests.proc import free_port, output_of, started, stop, wait_until
from tests.runpod_queue import JobQueue
from tests.venvs import python_of, requirement_lines, venv_for

SINGLE = f"{ROOT}/tests/models/single.py:Single"


def runpod_worker(tmp_path: Path, app: str = SINGLE) -> tuple[Path, str]:
    directory = build(app, "runpod", tmp_path / "runpod").directory
    return directory, python_of(venv_for(requirement_lines(directory / "requirements.txt")))


def events(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()]


def test_runpod_stopped_job_keeps_its_place_until_predict_returns(tmp_path: Path) -> None:
    directory, python = runpod_worker(tmp_path)
    log = tmp_path / "log"
    with JobQueue() as queue:
        queue.add("long", {"seconds": 2, "tag": "long"})
        env = queue.env() | {"LIFECYCLE_LOG": str(log), "PATH": "/usr/bin:/bin"}
        with started([python, "handler.py"], directory, env) as proc:
            queue.wait_taken("long", 60)
            wait_until(lambda: "start:long" in events(log), 30, "the long predict running", proc)
            queue.stop("long")
            queue.add("next", {"seconds": 0, "tag": "next"})
            queue.wait_done(["next"], 60)
            code = stop(proc, signal.SIGTERM, timeout=30)
        assert code == 0, output_of(proc)
    order = [e for e in events(log) if e.startswith(("start:", "end:"))]
    assert order == ["start:long", "end:long", "start:next", "end:next"], "the next job ran beside the stopped one"
    # its predict held RunPod's loop, so the stop came once it had returned: its output posted, or the post cut short
    assert queue.done.get("long") in (None, {"output": "long"})


def test_runpod_stopped_job_on_a_predict_thread_keeps_its_place_and_posts_nothing(tmp_path: Path) -> None:
    directory, python = runpod_worker(tmp_path, f"{ROOT}/tests/models/single.py:Pair")
    log = tmp_path / "log"
    with JobQueue() as queue:
        queue.add("long", {"seconds": 3, "tag": "long"})
        queue.add("other", {"seconds": 3, "tag": "other"})
        env = queue.env() | {"LIFECYCLE_LOG": str(log), "PATH": "/usr/bin:/bin"}
        with started([python, "handler.py"], directory, env) as proc:
            running = {"start:long", "start:other"}
            wait_until(lambda: running <= set(events(log)), 60, "both predicts running", proc)
            queue.stop("long")
            queue.add("next", {"seconds": 0, "tag": "next"})
            queue.wait_done(["next", "other"], 60)
            code = stop(proc, signal.SIGTERM, timeout=30)
        assert code == 0, output_of(proc)
    order = [e for e in events(log) if e.startswith(("start:", "end:"))]
    first_end = min(order.index("end:long"), order.index("end:other"))
    assert order.index("start:next") > first_end, f"the next job took the stopped one's place: {order}"
    assert "long" not in queue.done and queue.done["other"] == {"output": "other"}  # RunPod stopped it


def test_runpod_job_past_the_grace_ends_as_a_retryable_error(tmp_path: Path) -> None:
    directory, python = runpod_worker(tmp_path)
    log = tmp_path / "log"
    with JobQueue() as queue:
        queue.add("long", {"seconds": 8, "tag": "long"})
        queue.add("quick", {"seconds": 0, "tag": "quick"})
        env = queue.env() | {"LIFECYCLE_LOG": str(log), "GPUSERVE_GRACE_SECONDS": "1", "PATH": "/usr/bin:/bin"}
        with started([python, "handler.py"], directory, env) as proc:
            queue.wait_done(["quick"], 60)
            queue.add("again", {"seconds": 8, "tag": "again"})
            queue.wait_taken("again", 30)
            wait_until(lambda: "start:again" in events(log), 30, "the last predict running", proc)
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code = proc.wait(timeout=30)
            stopped_after = time.monotonic() - signalled
        assert code == 0, output_of(proc)
        assert stopped_after < 6, f"the predict ran on past the grace of 1 s: {stopped_after:.1f} s"  # 8 s in all
        assert queue.done["quick"] == {"output": "quick"}
        error = queue.done["again"]["error"]
        assert error.startswith("Interrupted: the worker is shutting down") and "retry it" in error
    assert "stopped:again" in events(log) and "end:again" not in events(log)  # the predict itself was stopped
    lifecycle = [e for e in events(log) if not e.startswith(("start:", "end:", "stopped:"))]
    assert lifecycle == ["setup", "on_preempt", "shutdown"]


def cog_server_command(tmp_path: Path) -> tuple[list[str], Path, dict[str, str]]:
    directory = build(SINGLE, "cog", tmp_path / "cog").directory
    venv = venv_for([*requirement_lines(directory / "requirements.txt"), f"cog=={PINS['cog']}"])
    env = {"COG_PREDICT_TYPE_STUB": "runner.py:Runner", "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
    return [python_of(venv), "-m", "cog.server.http", "--host", "127.0.0.1"], directory, env


@pytest.mark.parametrize(("seconds", "finishes"), [(1.5, True), (8, False)], ids=["within-grace", "past-grace"])
def test_cog_sigterm_finishes_or_fails_as_retryable(seconds: float, finishes: bool, tmp_path: Path) -> None:
    command, directory, env = cog_server_command(tmp_path)
    log = tmp_path / "log"
    port = free_port()
    env |= {"PORT": str(port), "LIFECYCLE_LOG": str(log), "GPUSERVE_GRACE_SECONDS": "3"}
    with (
        started(command, directory, env) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
        ThreadPoolExecutor(1) as pool,
    ):
        wait_until(lambda: client.get("/health-check").json()["status"] == "READY", 90, "cog READY", proc)
        base = str(client.base_url)
        answer = pool.submit(httpx.post, f"{base}/predictions", json={"input": {"seconds": seconds}}, timeout=60)
        wait_until(lambda: "start:x" in events(log), 30, "the prediction running", proc)
        proc.send_signal(signal.SIGTERM)
        body = answer.result().json()
        code = proc.wait(timeout=30)
    assert code == 0, output_of(proc)
    if finishes:
        assert (body["status"], body["output"]) == ("succeeded", "x")
    else:
        assert body["status"] == "failed", body
        assert "Interrupted: the model server is shutting down" in body["error"], body  # cog names the type
        assert body["error"].endswith("retry it")
        assert "stopped:x" in events(log)  # the predict itself was stopped
    lifecycle = [e for e in events(log) if not e.startswith(("start:", "end:", "stopped:"))]
    assert lifecycle == ["setup", "on_preempt", "shutdown"]

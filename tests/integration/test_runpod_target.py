"""runpod: the built directory, copied away, run by the real runpod SDK in a fresh virtualenv of its requirements."""

from __future__ import annotations

import ast
import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apps import ALL, EMBEDDINGS, FAULTY, HELLO, LIFECYCLE, STREAM, Case, params
from tests.integration.conftest import build_elsewhere
from tests.integration.test_docker_target import hadolint
from tests.proc import free_port, output_of, started, stop, wait_until
from tests.runpod_queue import JobQueue
from tests.venvs import python_of, requirement_lines, venv_for

CaseEnv = Callable[[Case], dict[str, str]]
LocalOutput = Callable[[Case], Any]


def runpod_dir(case: Case, tmp_path: Path) -> tuple[Path, str]:
    directory = build_elsewhere(case, "runpod", tmp_path)
    return directory, python_of(venv_for(requirement_lines(directory / "requirements.txt")))


def run_test_input(
    python: str, directory: Path, env: dict[str, str], payload: dict[str, Any] | None
) -> tuple[int, str]:
    args = [python, "handler.py"] + (["--test_input", json.dumps(payload)] if payload is not None else [])
    result = subprocess.run(
        args, cwd=directory, env={**env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120
    )
    return result.returncode, result.stdout + result.stderr


def job_result(log: str) -> dict[str, Any]:
    line = next(line for line in log.splitlines() if "Job result: " in line)
    parsed: dict[str, Any] = ast.literal_eval(line.split("Job result: ", 1)[1])
    return parsed


# --test_input reports its result only in a log line, which runpod cuts at 4096 characters: embeddings' 384 numbers
# are longer, so that example is checked through the local API below, which answers in full.
@pytest.mark.parametrize("case", [c for c in ALL if c is not EMBEDDINGS], ids=lambda c: c.key)
def test_handler_runs_test_input_and_rejects_bad_input(
    case: Case, tmp_path: Path, case_env: CaseEnv, local_output: LocalOutput
) -> None:
    directory, python = runpod_dir(case, tmp_path)
    assert {f["code"] for f in hadolint(directory / "Dockerfile")} <= {"DL3008", "DL3064"}
    env = case_env(case) | {"LIFECYCLE_LOG": str(tmp_path / "lifecycle.log")}
    code, log = run_test_input(python, directory, env, {"input": case.good})
    assert code == 0, log
    assert job_result(log)["output"] == local_output(case)
    code, log = run_test_input(python, directory, env, {"input": case.bad})
    assert code == 1, log
    assert f"failed with error: invalid input: input.{case.bad_field}:" in log
    code, log = run_test_input(python, directory, env, None)  # test_input.json, made from the schema
    assert code == 0, log


@pytest.mark.parametrize("case", params([HELLO, STREAM, FAULTY, EMBEDDINGS]))
def test_local_api_answers_like_the_local_server(
    case: Case, tmp_path: Path, case_env: CaseEnv, local_output: LocalOutput
) -> None:
    directory, python = runpod_dir(case, tmp_path)
    port = free_port()
    command = [python, "handler.py", "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
    with (
        started(command, directory, case_env(case)) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
    ):
        wait_until(lambda: client.get("/openapi.json").status_code == 200, 60, "runpod API", proc)
        done = client.post("/runsync", json={"input": case.good}).json()
        assert done["status"] == "COMPLETED" and done["output"] == local_output(case)
        if case is STREAM:
            job = client.post("/run", json={"input": {"count": 2}}).json()
            assert job["status"] == "IN_PROGRESS"
            streamed = client.post(f"/stream/{job['id']}").json()
            assert streamed["stream"] == [{"output": "alpha "}, {"output": "beta "}]
        if case is FAULTY:
            failed = client.post("/runsync", json={"input": {"fail": True, "message": "bad weights"}}).json()
            assert failed["status"] == "FAILED" and failed["error"] == "ValueError: bad weights"
            assert client.post("/runsync", json={"input": {}}).json()["output"] == {"calls": 3}
        invalid = client.post("/runsync", json={"input": case.bad}).json()
        if case is not STREAM:  # runpod's local API aggregates generator chunks and never marks them FAILED
            assert invalid["status"] == "FAILED" and invalid["error"].startswith(
                f"invalid input: input.{case.bad_field}:"
            )


def test_worker_loop_takes_jobs_and_drains_on_sigterm(tmp_path: Path, case_env: CaseEnv) -> None:
    directory, python = runpod_dir(LIFECYCLE, tmp_path)
    log = tmp_path / "lifecycle.log"
    with JobQueue() as queue:
        queue.add("quick", {"tag": "q"})
        queue.add("bad", {"seconds": 99})
        env = case_env(LIFECYCLE) | queue.env() | {"LIFECYCLE_LOG": str(log)}
        with started([python, "handler.py"], directory, env) as proc:
            queue.wait_done(["quick", "bad"], 60)
            assert queue.done["quick"] == {"output": {"tag": "q", "slept": 0.0}}
            assert queue.done["bad"]["error"].startswith(
                "invalid input: input.seconds: Input should be less than or equal to 30"
            )
            assert max(queue.batch_sizes) == 2  # concurrency=2 became a concurrency_modifier: batch takes of 2
            queue.add("slow", {"seconds": 2, "tag": "s"})
            queue.wait_taken("slow", 30)
            proc.send_signal(signal.SIGTERM)
            code = stop(proc, signal.SIGTERM, timeout=30)
            out = output_of(proc)
        assert code == 0, out
        assert queue.done["slow"] == {"output": {"tag": "s", "slept": 2.0}}, out  # finished and posted before exiting
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["setup", "shutdown"]


def test_worker_loop_streams_each_chunk(tmp_path: Path, case_env: CaseEnv) -> None:
    directory, python = runpod_dir(STREAM, tmp_path)
    with JobQueue() as queue:
        queue.add("s1", {"count": 3})
        queue.add("s-bad", {"count": 0})
        with started([python, "handler.py"], directory, case_env(STREAM) | queue.env()):
            queue.wait_done(["s1", "s-bad"], 60)
        assert queue.streamed["s1"] == ["alpha ", "beta ", "gamma "]
        assert queue.done["s1"] == {"output": ["alpha ", "beta ", "gamma "]}
        assert queue.done["s-bad"]["error"].startswith(
            "invalid input: input.count: Input should be greater than or equal to 1"
        )

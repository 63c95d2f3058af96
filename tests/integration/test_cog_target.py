"""cog: the built directory, copied away, served by the real cog server (coglet) in a fresh virtualenv."""

from __future__ import annotations

import ast
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gpuserve.adapters._common import PINS
from tests.apps import ALL, FAULTY, LIFECYCLE, STREAM, Case, params
from tests.integration.conftest import build_elsewhere
from tests.integration.test_runpod_target import CaseEnv, LocalOutput
from tests.proc import free_port, output_of, started, stop, wait_until
from tests.venvs import requirement_lines, venv_for


def post(client: httpx.Client, payload: dict[str, Any]) -> httpx.Response:
    """POST /predictions, retrying cog's 409 "At capacity": coglet frees a slot a moment after answering."""
    for _ in range(100):
        response = client.post("/predictions", json=payload)
        if response.status_code != 409:
            return response
        time.sleep(0.02)
    return response


def concurrent_max(runner: Path) -> int:
    """The max of @concurrent(max=N) on run(), read statically as `cog build` reads it (1 without one)."""
    for node in ast.walk(ast.parse(runner.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "concurrent":
            return int(ast.literal_eval(node.keywords[0].value))
    return 1


@contextmanager
def cog_server(case: Case, tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[Any, httpx.Client, Path]]:
    directory = build_elsewhere(case, "cog", tmp_path)
    config = yaml.safe_load((directory / "cog.yaml").read_text())
    venv = venv_for([*requirement_lines(directory / "requirements.txt"), f"cog=={PINS['cog']}"])
    port = free_port()
    # coglet starts its worker with the `python` on PATH: the virtualenv must come first.
    server_env = env | {
        "PORT": str(port),
        "COG_PREDICT_TYPE_STUB": config["run"],
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
    }
    # What `cog build` bakes into the image (cog.yaml's environment, @concurrent(max=N) as COG_MAX_CONCURRENCY);
    # the run's own environment wins over it, as `docker run -e` does.
    baked = dict(line.split("=", 1) for line in config.get("environment") or [])
    concurrency = concurrent_max(directory / "runner.py")
    if concurrency > 1:
        baked["COG_MAX_CONCURRENCY"] = str(concurrency)
    server_env = baked | server_env
    command = [str(venv / "bin" / "python"), "-m", "cog.server.http", "--host", "127.0.0.1"]
    with (
        started(command, directory, server_env) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
    ):
        wait_until(lambda: client.get("/health-check").json()["status"] == "READY", 90, "cog READY", proc)
        yield proc, client, directory


@pytest.mark.parametrize("case", params(ALL))
def test_cog_server_answers_like_the_local_server(
    case: Case, tmp_path: Path, case_env: CaseEnv, local_output: LocalOutput
) -> None:
    with cog_server(case, tmp_path, case_env(case) | {"LIFECYCLE_LOG": str(tmp_path / "log")}) as (
        _proc,
        client,
        directory,
    ):
        for source in directory.rglob("*.py"):
            compile(source.read_text(), str(source), "exec")  # every generated and copied file compiles
        good = post(client, {"input": case.good}).json()
        assert good["status"] == "succeeded", good
        assert good["output"] == local_output(case)
        setup_logs = client.get("/health-check").json()["setup"]["logs"]
        assert "deprecat" not in (setup_logs + good["logs"]).lower()  # the generated runner uses cog's current API
        bad = post(client, {"input": case.bad})
        assert bad.status_code == 422
        assert [d["loc"] for d in bad.json()["detail"]] == [["body", "input", case.bad_field]]


def test_constraint_violations_name_the_field(tmp_path: Path, case_env: CaseEnv) -> None:
    from tests.apps import HELLO

    with cog_server(HELLO, tmp_path, case_env(HELLO)) as (_proc, client, _dir):
        too_short = post(client, {"input": {"name": ""}}).json()["detail"]
        assert too_short == [
            {"loc": ["body", "input", "name"], "msg": '"" is shorter than 1 character', "type": "value_error"}
        ]
        choice = post(client, {"input": {"name": "x", "language": "de"}}).json()["detail"]
        assert choice[0]["loc"] == ["body", "input", "language"] and "is not one of" in choice[0]["msg"]
        missing = post(client, {"input": {}}).json()["detail"]
        assert missing == [{"loc": ["body", "input", "name"], "msg": "Field required", "type": "value_error.missing"}]


def test_failures_are_reported_and_serving_goes_on(tmp_path: Path, case_env: CaseEnv) -> None:
    with cog_server(FAULTY, tmp_path, case_env(FAULTY)) as (_proc, client, _dir):
        failed = post(client, {"input": {"fail": True, "message": "bad weights"}}).json()
        assert failed["status"] == "failed" and failed["error"].endswith("ValueError: bad weights")
        assert post(client, {"input": {}}).json()["output"] == {"calls": 2}


def test_streaming_chunks_arrive_as_events(tmp_path: Path, case_env: CaseEnv) -> None:
    with cog_server(STREAM, tmp_path, case_env(STREAM)) as (_proc, client, _dir):
        with client.stream(
            "POST", "/predictions", json={"input": {"count": 3}}, headers={"Accept": "text/event-stream"}
        ) as response:
            text = "".join(response.iter_text())
        events = [dict(line.split(": ", 1) for line in block.splitlines()) for block in text.strip().split("\n\n")]
        outputs = [e["data"] for e in events if e["event"] == "output"]
        assert outputs == [
            '{"chunk":"alpha ","index":0}',
            '{"chunk":"beta ","index":1}',
            '{"chunk":"gamma ","index":2}',
        ]
        assert events[-1]["event"] == "completed"


def test_sigterm_finishes_the_prediction_then_runs_shutdown(tmp_path: Path, case_env: CaseEnv) -> None:
    log = tmp_path / "log"
    with cog_server(LIFECYCLE, tmp_path, case_env(LIFECYCLE) | {"LIFECYCLE_LOG": str(log)}) as (proc, client, _dir):
        result: dict[str, Any] = {}

        def slow() -> None:
            result["r"] = post(client, {"input": {"seconds": 1.5, "tag": "late"}}).json()

        worker = threading.Thread(target=slow)
        worker.start()
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        worker.join(30)
        code = stop(proc, signal.SIGTERM, 30)
        assert code == 0, output_of(proc)
    assert result["r"]["status"] == "succeeded" and result["r"]["output"] == {"tag": "late", "slept": 1.5}
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["setup", "shutdown"]


def test_the_decorator_alone_admits_n_at_once(tmp_path: Path, case_env: CaseEnv) -> None:
    """cog.yaml has no concurrency.max: @concurrent(max=2) on run() is what lets two predictions overlap."""
    directory_config = build_elsewhere(LIFECYCLE, "cog", tmp_path / "probe")
    assert "concurrency" not in yaml.safe_load((directory_config / "cog.yaml").read_text())
    assert concurrent_max(directory_config / "runner.py") == 2
    with cog_server(LIFECYCLE, tmp_path, case_env(LIFECYCLE) | {"LIFECYCLE_LOG": str(tmp_path / "log")}) as (
        _proc,
        client,
        _dir,
    ):
        answers: list[httpx.Response] = []

        def one(tag: str) -> None:
            with httpx.Client(base_url=client.base_url, timeout=30) as own:
                answers.append(own.post("/predictions", json={"input": {"seconds": 1.5, "tag": tag}}))

        started_at = time.monotonic()
        threads = [threading.Thread(target=one, args=(tag,)) for tag in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        elapsed = time.monotonic() - started_at
        assert sorted(a.status_code for a in answers) == [200, 200], [a.text for a in answers]
        assert sorted(a.json()["output"]["tag"] for a in answers) == ["a", "b"]
        assert elapsed < 2.8, f"two 1.5 s predictions took {elapsed:.1f} s: they did not overlap"

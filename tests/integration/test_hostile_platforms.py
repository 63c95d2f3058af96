"""Hostile inputs through RunPod's and cog's own local runtimes: their platform's error form, never a crash,
a 5xx or a hung worker, and the worker still answers a good input afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from gpuserve.adapters._common import PINS
from tests.apps import HELLO
from tests.integration.conftest import build_elsewhere
from tests.proc import free_port, output_of, started, wait_until
from tests.venvs import python_of, requirement_lines, venv_for

HUGE = "a" * 200_000
# Raw JSON bodies, so values json.dumps would not write (1e999) go through as a client could send them.
HOSTILE: dict[str, str] = {
    "bool-for-string": '{"name": false}',
    "string-for-bool": '{"name": "x", "excited": "perhaps"}',
    "infinity": '{"name": "x", "excited": 1e999}',
    "nan-literal": '{"name": "x", "excited": NaN}',
    "not-an-object": '"just a string"',
    "a-list": "[1, 2, 3]",
    "null": "null",
    "unknown-field": '{"name": "x", "bogus": 1}',
    "too-long": json.dumps({"name": HUGE}),
    "deep": '{"name": ' + "[" * 200 + "]" * 200 + "}",
    "wrong-choice": '{"name": "x", "language": "de"}',
}


def body(raw_input: str) -> bytes:
    return ('{"input": ' + raw_input + "}").encode()


def test_runpod_local_api_answers_every_hostile_input_as_a_failed_job(tmp_path: Path) -> None:
    directory = build_elsewhere(HELLO, "runpod", tmp_path)
    python = python_of(venv_for(requirement_lines(directory / "requirements.txt")))
    port = free_port()
    command = [python, "handler.py", "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
    with (
        started(command, directory, {"PATH": "/usr/bin:/bin"}) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        wait_until(lambda: client.get("/openapi.json").status_code == 200, 60, "runpod API", proc)
        for name, raw in HOSTILE.items():
            answer = client.post("/runsync", content=body(raw), headers={"content-type": "application/json"})
            assert answer.status_code < 500, (name, answer.status_code, answer.text[:300])
            if answer.status_code == 200:  # RunPod's form: the job FAILED, saying why; unknown fields are refused too
                job = answer.json()
                assert job["status"] == "FAILED" and job["error"].startswith("invalid input"), (name, job)
            else:  # RunPod's own API refused a body that is not a job (its 422)
                assert answer.status_code == 422, (name, answer.status_code)
        good = client.post("/runsync", json={"input": HELLO.good}).json()
        assert good["status"] == "COMPLETED" and good["output"] == HELLO.expected
        proc.terminate()
        proc.wait(timeout=30)
        logged = [json.loads(line) for line in output_of(proc).splitlines() if line.startswith('{"')]
    assert any(entry.get("request_id") == good["id"] for entry in logged), "no log line with the job id"


def test_cog_server_answers_every_hostile_input_with_its_422_or_a_failure(tmp_path: Path) -> None:
    directory = build_elsewhere(HELLO, "cog", tmp_path)
    venv = venv_for([*requirement_lines(directory / "requirements.txt"), f"cog=={PINS['cog']}"])
    port = free_port()
    env = {
        "PORT": str(port),
        "COG_PREDICT_TYPE_STUB": "runner.py:Runner",
        "COG_MAX_CONCURRENCY": "4",
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
    }
    with (
        started([python_of(venv), "-m", "cog.server.http", "--host", "127.0.0.1"], directory, env) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        wait_until(lambda: client.get("/health-check").json()["status"] == "READY", 90, "cog READY", proc)
        for name, raw in HOSTILE.items():
            answer = client.post("/predictions", content=body(raw), headers={"content-type": "application/json"})
            for _ in range(50):  # coglet's transient "At capacity" right after a prediction (docs/targets)
                if answer.status_code != 409:
                    break
                answer = client.post("/predictions", content=body(raw), headers={"content-type": "application/json"})
            assert answer.status_code < 500, (name, answer.status_code, answer.text[:300])
            if answer.status_code == 200:
                assert answer.json()["status"] in ("failed", "succeeded"), (name, answer.json())
                if answer.json()["status"] == "succeeded":  # cog drops unknown fields (documented)
                    assert name == "unknown-field", name
            else:
                assert answer.status_code in (400, 422), (name, answer.status_code)
        good = client.post("/predictions", json={"input": HELLO.good}).json()
        assert good["status"] == "succeeded" and good["output"] == HELLO.expected
        proc.terminate()
        proc.wait(timeout=30)
        seen = output_of(proc) + good.get("logs", "")
    assert good["id"] in seen, "no log line with the prediction id"

"""The batched model under concurrent load on each runtime: groups larger than one, each answer its own input's.

The local server (`gpuserve serve`), RunPod's worker loop (concurrency_modifier), cog's server (@concurrent)
and Modal (@modal.concurrent: the web endpoint and predict.local from threads), each with the platform's own
runtime in the virtualenv the target tests already use.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from gpuserve.adapters._common import PINS
from tests.apps import BATCHED, ROOT
from tests.integration.conftest import build_elsewhere
from tests.integration.test_cog_target import cog_server, post
from tests.integration.test_modal_target import DRIVER, offline_env, run
from tests.integration.test_runpod_target import CaseEnv, runpod_dir
from tests.proc import free_port, output_of, started, stop, wait_until
from tests.runpod_queue import JobQueue
from tests.venvs import python_of, requirement_lines, venv_for

# Eight requests at once, each sleeping in predict: a group of four runs while the next four form.
BURST = [{"text": f"item-{i}", "seconds": 0.3} for i in range(8)]


def burst(send: Callable[[dict[str, Any]], Any], inputs: list[dict[str, Any]]) -> list[Any]:
    """Send each input from a thread of its own, as concurrent clients do; the answers in input order."""
    with ThreadPoolExecutor(len(inputs)) as pool:
        return list(pool.map(send, inputs))


def assert_grouped_and_matched(inputs: list[dict[str, Any]], outputs: list[Any]) -> None:
    """Every output is its own input's, and predict saw groups of more than one (never more than max_size)."""
    assert [o["text"] for o in outputs] == [i["text"].upper() for i in inputs]
    sizes = [o["batch"] for o in outputs]
    assert max(sizes) > 1 and max(sizes) <= 4, sizes


def test_the_local_server_groups_concurrent_requests_and_answers_each_its_own() -> None:
    port = free_port()
    command = [sys.executable, "-m", "gpuserve.cli", "serve", BATCHED.ref, "--host", "127.0.0.1", "--port", str(port)]
    env = {"GPUSERVE_LOG_FORMAT": "json"}
    with (
        started(command, ROOT, env) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=httpx.Limits(max_connections=16)) as c,
    ):
        wait_until(lambda: c.get("/health").status_code == 200, 30, "health", proc)
        answers = burst(lambda raw: c.post("/predict", json={"input": raw}), BURST)
        assert [a.status_code for a in answers] == [200] * len(BURST), [a.text for a in answers]
        assert_grouped_and_matched(BURST, [a.json()["output"] for a in answers])

        mixed: list[dict[str, Any]] = [
            {"text": "a", "seconds": 0.2},
            {"text": "b", "fail": True},
            {"text": "c"},
            {"text": "d"},
        ]
        answers = burst(lambda raw: c.post("/predict", json={"input": raw}), mixed)
        assert [a.status_code for a in answers] == [200, 500, 200, 200]
        assert answers[1].json()["error"] == {"type": "ItemError", "message": "cannot take 'b'"}
        assert [a.json()["output"]["text"] for a in answers if a.status_code == 200] == ["A", "C", "D"]
        stop(proc)
        lines = [json.loads(line) for line in output_of(proc).splitlines() if line.startswith("{")]
    batches = [line for line in lines if line.get("event") == "batch"]
    requests = [line for line in lines if line.get("event") == "request" and line.get("path") == "/predict"]
    assert sum(b["size"] for b in batches) == len(BURST) + len(mixed) == len(requests)
    assert max(b["size"] for b in batches) > 1 and all(b["wait_ms"] >= 0 for b in batches)
    assert sorted(r["batch_size"] for r in requests) == sorted(b["size"] for b in batches for _ in range(b["size"]))


def test_the_runpod_worker_loop_takes_enough_jobs_to_fill_groups(tmp_path: Path, case_env: CaseEnv) -> None:
    directory, python = runpod_dir(BATCHED, tmp_path)
    with JobQueue() as queue:
        for i, raw in enumerate(BURST):
            queue.add(f"j{i}", raw)
        queue.add("refused", {"text": "x", "fail": True})
        with started([python, "handler.py"], directory, case_env(BATCHED) | queue.env()):
            queue.wait_done([f"j{i}" for i in range(len(BURST))] + ["refused"], 60)
        assert max(queue.batch_sizes) == 8  # concurrency_modifier: one group of 4 running and one forming
        assert_grouped_and_matched(BURST, [queue.done[f"j{i}"]["output"] for i in range(len(BURST))])
        assert queue.done["refused"]["error"] == "ItemError: cannot take 'x'"


def test_cogs_concurrent_predictions_are_grouped(tmp_path: Path, case_env: CaseEnv) -> None:
    with cog_server(BATCHED, tmp_path, case_env(BATCHED)) as (_proc, client, _directory):
        answers = burst(lambda raw: post(client, {"input": raw}).json(), BURST)
    assert [a["status"] for a in answers] == ["succeeded"] * len(BURST), answers
    assert_grouped_and_matched(BURST, [a["output"] for a in answers])


THREADED_LOCAL = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, ".")
import modal_app

model = modal_app.BatchedUpper()
model.predict.local(text="warm")  # the first local call runs the enter hook
inputs = json.loads(sys.argv[1])
with ThreadPoolExecutor(len(inputs)) as pool:
    print(json.dumps(list(pool.map(lambda raw: model.predict.local(**raw), inputs))))
"""


def test_modal_groups_concurrent_inputs_on_the_method_and_the_web_endpoint(tmp_path: Path, case_env: CaseEnv) -> None:
    directory = build_elsewhere(BATCHED, "modal", tmp_path)
    python = python_of(venv_for([*requirement_lines(directory / "requirements.txt"), f"modal=={PINS['modal']}"]))
    home = tmp_path / "home"
    home.mkdir()
    env = offline_env(case_env(BATCHED), home)
    called = run(python, ["-c", textwrap.dedent(THREADED_LOCAL), json.dumps(BURST)], directory, env)
    assert called.returncode == 0, called.stderr
    assert_grouped_and_matched(BURST, json.loads(called.stdout.splitlines()[-1]))

    port = free_port()
    with (
        started([python, str(DRIVER), "serve", "BatchedUpper", str(port)], directory, env) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, limits=httpx.Limits(max_connections=16)) as c,
    ):
        wait_until(lambda: c.get("/health").status_code == 200, 90, "modal web endpoint", proc)
        started_at = time.monotonic()
        answers = burst(lambda raw: c.post("/predict", json={"input": raw}), BURST)
        assert [a.status_code for a in answers] == [200] * len(BURST), [a.text for a in answers]
        assert_grouped_and_matched(BURST, [a.json()["output"] for a in answers])
        assert time.monotonic() - started_at < 8 * 0.3  # eight 0.3 s items did not run one by one

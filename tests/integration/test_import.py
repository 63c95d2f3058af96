"""Imported projects answer as the originals do: each cog project run by cog's own server, each RunPod handler
by the runpod SDK's local API, and the app `gpuserve import` wrote for it built for other targets and run with
their local runtimes; the same inputs, the same outputs, and refusals of the same inputs for the same reason.

Differences that are gpuserve's contract, not the import's, are left out of the inputs: unknown keys (cog drops
them, RunPod hands them to the handler, gpuserve answers 422) and `null` for an Optional cog input.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpuserve.adapters._common import PINS
from gpuserve.build import build
from gpuserve.importers import import_cog, import_runpod
from gpuserve.loader import load_app
from tests.integration.test_cog_target import post
from tests.integration.test_files_targets import Answer, running
from tests.proc import free_port, started, wait_until
from tests.venvs import python_of, venv_for

DATA = Path(__file__).resolve().parents[1] / "data" / "import"
# The virtualenvs the cog and RunPod target tests use; they hold what these projects need besides the SDK.
COG_VENV = [f"cog=={PINS['cog']}", f"packaging=={PINS['packaging']}", f"pydantic=={PINS['pydantic']}"]
RUNPOD_VENV = [f"runpod=={PINS['runpod']}", f"packaging=={PINS['packaging']}", f"pydantic=={PINS['pydantic']}"]
TEXT_FILE = "data:text/plain;base64," + base64.b64encode(b"abc").decode()
Ask = Callable[[dict[str, Any]], Answer]


@dataclass(frozen=True)
class Project:
    """A project under tests/data/import, the inputs both sides must answer alike, and who serves the import."""

    key: str
    kind: str  # "cog" or "runpod"
    module: str  # the file of the wrapped class or handler, which every build must carry
    good: tuple[dict[str, Any], ...]
    refused: tuple[tuple[dict[str, Any], str], ...]  # (input, the field named or a fragment of the failure)
    env: tuple[tuple[str, str], ...] = ()  # what the platform's image sets (cog.yaml environment, Dockerfile ENV)


RUNNER = Project(
    "cog-runner",
    "cog",
    "run.py",
    good=(
        {"text": "hi"},
        {
            "text": "hi",
            "mode": "title",
            "times": 2,
            "shout": True,
            "suffix": "?",
            "level": 3,
            "tag": "ab",
            "ratio": 0.25,
        },
        {"text": "MiXeD", "mode": "lower", "ratio": 1},
    ),
    refused=(
        ({"text": ""}, "text"),
        ({}, "text"),
        ({"text": "x" * 21}, "text"),
        ({"text": "hi", "mode": "sideways"}, "mode"),
        ({"text": "hi", "level": 4}, "level"),
        ({"text": "hi", "tag": "A1"}, "tag"),
        ({"text": "hi", "times": 9}, "times"),
        ({"text": "hi", "ratio": 1.5}, "ratio"),
        ({"text": "hi", "times": "2"}, "times"),
        ({"text": "boom"}, "ValueError: text must not be boom"),
    ),
    env=(("GREETING", "Hello"),),
)
PREDICTOR = Project(
    "cog-predictor",
    "cog",
    "predict.py",
    good=({"data": TEXT_FILE}, {"data": TEXT_FILE, "times": 3}),
    refused=(({"times": 2}, "data"), ({"data": TEXT_FILE, "times": 0}, "times")),
)
STREAM = Project(
    "cog-stream",
    "cog",
    "stream.py",
    good=({"prompt": "hi"}, {"prompt": "a", "count": 5}),
    refused=(({"prompt": ""}, "prompt"), ({"prompt": "a", "count": 7}, "count")),
)
RP_SYNC = Project(
    "runpod-sync",
    "runpod",
    "handler.py",
    good=({"prompt": "hi"}, {"prompt": "hi", "count": 3}, {"prompt": "x", "count": 0}),
    refused=(
        ({"prompt": ""}, "prompt must not be empty"),
        ({"prompt": "boom"}, "ValueError: prompt must not be boom"),
    ),
    env=(("PREFIX", ">> "),),
)
RP_ASYNC = Project(
    "runpod-async",
    "runpod",
    "async_handler.py",
    good=({"text": "hi"}, {"text": "hi", "repeat": 3, "upper": True}),
    refused=(({"repeat": 2}, "text"), ({"text": 5}, "text")),
)
RP_STREAM = Project(
    "runpod-stream",
    "runpod",
    "stream_handler.py",
    good=({"text": "one two three"}, {"text": ""}, {"text": "a b", "ignored": [1, 2]}),
    refused=(),  # RunPod's local API answers a generator's error chunk as COMPLETED: compared in its own test
)
FULL = pytest.mark.full


def imported(project: Project, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """The project copied away and imported; the app reference and the environment its image sets."""
    directory = tmp_path / project.key
    shutil.copytree(DATA / project.key, directory)
    if project.kind == "cog":
        app = import_cog(directory).write()
    else:
        app = import_runpod(directory / project.module).write()
    loaded = load_app(str(app))
    assert loaded.spec.image.env_dict == dict(project.env)
    return f"{app}:{loaded.cls.__name__}", loaded.spec.image.env_dict


@contextmanager
def original(project: Project, tmp_path: Path) -> Iterator[Ask]:
    """The project as its own platform runs it offline, and how to ask it."""
    directory = tmp_path / f"{project.key}-original"
    shutil.copytree(DATA / project.key, directory)
    port = free_port()
    env = dict(project.env) | {"PYTHONUNBUFFERED": "1"}
    if project.kind == "cog":
        venv = venv_for(COG_VENV)
        import yaml

        config = yaml.safe_load((directory / "cog.yaml").read_text())
        ref = config.get("run") or config["predict"]
        env |= {"PORT": str(port), "COG_PREDICT_TYPE_STUB": ref, "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
        if project is STREAM:
            env["COG_MAX_CONCURRENCY"] = "2"  # what `cog build` bakes in for @concurrent(max=2)
        command = [python_of(venv), "-m", "cog.server.http", "--host", "127.0.0.1"]
        with started(command, directory, env) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            wait_until(lambda: c.get("/health-check").json()["status"] == "READY", 90, "cog READY", proc)

            def ask_cog(inputs: dict[str, Any]) -> Answer:
                response = post(c, {"input": inputs})
                body = response.json()
                if response.status_code == 200 and body["status"] == "succeeded":
                    return Answer(True, body["output"])
                return Answer(False, error=f"cog {response.status_code} {body.get('error') or body.get('detail')}")

            yield ask_cog
        return
    python = python_of(venv_for(RUNPOD_VENV))
    command = [python, project.module, "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
    with started(command, directory, env) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
        wait_until(lambda: c.get("/openapi.json").status_code == 200, 60, "runpod API", proc)

        def ask_runpod(inputs: dict[str, Any]) -> Answer:
            done = c.post("/runsync", json={"input": inputs}).json()
            if done["status"] == "COMPLETED":
                return Answer(True, done.get("output"))
            return Answer(False, error=f"runpod {_runpod_error(done['error'])}")

        yield ask_runpod


def _runpod_error(error: Any) -> str:
    """A raised exception arrives as JSON with its type and message; a returned {"error": ...} as it was."""
    if isinstance(error, str) and error.startswith("{"):
        parsed = json.loads(error)
        kind = re.sub(r"^<class '(?:\w+\.)*(\w+)'>$", r"\1", parsed["error_type"])
        return f"{kind}: {parsed['error_message']}"
    return error if isinstance(error, str) else json.dumps(error)


def refused_for(answer: Answer, expected: str) -> bool:
    """Whether a refusal names the field `expected` (a 422 from any runtime) or carries the failure `expected`."""
    if expected in answer.error:
        return True
    named = re.findall(r"input\.(\w+)|'input', '(\w+)'", answer.error)
    return any(expected in pair for pair in named)


def carried(project: Project, ref: str, target: str, tmp_path: Path) -> None:
    """Fail at once, not after a start timeout, when the build leaves out the module the app imports."""
    probe = build(ref, target, tmp_path / "probe" / target).directory
    assert (probe / project.module).is_file(), f"the {target} build left out {project.module}, which the app imports"


def compare(project: Project, target: str, tmp_path: Path) -> None:
    ref, image_env = imported(project, tmp_path)
    carried(project, ref, target, tmp_path)
    with original(project, tmp_path) as ask_original:
        expected = [ask_original(inputs) for inputs in project.good]
        refusals = [ask_original(inputs) for inputs, _why in project.refused]
    assert all(answer.ok for answer in expected), expected
    for answer, (inputs, why) in zip(refusals, project.refused, strict=True):
        assert not answer.ok and refused_for(answer, why), (inputs, answer)
    with running(target, ref, tmp_path / "targets", image_env | {"GPUSERVE_GRACE_SECONDS": "1"}) as (ask, _client):
        for inputs, answer in zip(project.good, expected, strict=True):
            assert ask(inputs) == answer, inputs
        for inputs, why in project.refused:
            got = failed_chunk(ask(inputs)) if target == "runpod" else ask(inputs)
            assert not got.ok and refused_for(got, why), (inputs, got)


def failed_chunk(answer: Answer) -> Answer:
    """RunPod's local API answers a stream that failed as COMPLETED, its chunks ending in {"error": ...}."""
    output = answer.output
    if answer.ok and isinstance(output, list) and output and isinstance(output[-1], dict) and "error" in output[-1]:
        return Answer(False, error=f"runpod {output[-1]['error']}")
    return answer


@pytest.mark.parametrize(
    ("project", "target"),
    [
        (RUNNER, "docker"),
        pytest.param(RUNNER, "runpod", marks=FULL),
        pytest.param(RUNNER, "cog", marks=FULL),  # back onto Replicate: the wrapper inside gpuserve's own runner
        (PREDICTOR, "docker"),
        pytest.param(PREDICTOR, "modal", marks=FULL),
        (STREAM, "runpod"),
        pytest.param(STREAM, "docker", marks=FULL),
        (RP_SYNC, "docker"),
        pytest.param(RP_SYNC, "modal", marks=FULL),
        (RP_ASYNC, "cog"),
        pytest.param(RP_ASYNC, "docker", marks=FULL),
        # Its open input is not one the cog and modal targets render.
        (RP_STREAM, "docker"),
    ],
    ids=lambda value: value.key if isinstance(value, Project) else value,
)
def test_the_imported_app_answers_as_the_original(project: Project, target: str, tmp_path: Path) -> None:
    compare(project, target, tmp_path)


def test_an_error_chunk_ends_the_stream_with_its_message(tmp_path: Path) -> None:
    """RunPod's worker ends a generator's job at a chunk holding "error"; gpuserve fails the request with it."""
    ref, env = imported(RP_STREAM, tmp_path)
    carried(RP_STREAM, ref, "docker", tmp_path)
    with running("docker", ref, tmp_path / "targets", env) as (ask, client):
        assert ask({"text": "go stop now"}) == Answer(False, error="500 HandlerError: stopped at word 1")
        assert client is not None
        body = {"input": {"text": "go stop"}}
        with client.stream("POST", "/predict", json=body, headers={"Accept": "text/event-stream"}) as response:
            events = "".join(response.iter_text())
        assert events == (
            'data: {"index":0,"word":"go"}\n\n'
            'event: error\ndata: {"type":"HandlerError","message":"stopped at word 1"}\n\n'
        )

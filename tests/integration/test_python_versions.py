"""Every Python a model may name (spec.PYTHON_VERSIONS) serves it, and a predict past its timeout answers 504.

For each version, with an interpreter found on this machine:
  docker  the Docker target's CMD, run from the built directory in a virtualenv of its pinned requirements.txt;
  serve   `gpuserve serve` from this checkout (PYTHONPATH) in a virtualenv of gpuserve's own declared
          dependencies, resolved as `pip install gpuserve` resolves them on that Python.
The virtualenvs are made in parallel, once, and cached by what they hold (tests/venvs.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gpuserve.build import build
from gpuserve.spec import PYTHON_VERSIONS
from tests.apps import ROOT
from tests.integration.test_docker_target import cmd_of
from tests.proc import free_port, started, wait_until
from tests.venvs import PYENV_VERSIONS, find_python, python_of, requirement_lines, venv_for

SLOW = f"{ROOT}/tests/models/slow.py:Slow"  # timeout=1, concurrency=2
MODES = ("docker", "serve")
PAST_TIMEOUT = {"seconds": 1.5}  # the worker thread sleeps on for 0.5 s after the 504: stopping waits for it


def gpuserve_dependencies() -> list[str]:
    """The [project] dependencies of pyproject.toml."""
    declared: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return declared


@pytest.fixture(scope="module")
def docker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(SLOW, "docker", tmp_path_factory.mktemp("slow") / "docker").directory


@pytest.fixture(scope="module")
def interpreters() -> dict[str, str | None]:
    return {version: find_python(version) for version in PYTHON_VERSIONS}


@pytest.fixture(scope="module")
def venvs(
    request: pytest.FixtureRequest, docker_dir: Path, interpreters: dict[str, str | None]
) -> Iterator[dict[tuple[str, str], Future[Path]]]:
    """Start every virtualenv the selected tests need at once; each test waits for its own."""
    wanted = {
        (str(item.callspec.params["version"]), str(item.callspec.params["mode"]))
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.module is request.module and hasattr(item, "callspec")
    }
    requirements = {
        "docker": requirement_lines(docker_dir / "requirements.txt"),
        "serve": gpuserve_dependencies(),
    }
    with ThreadPoolExecutor(max_workers=max(1, min(len(wanted), os.cpu_count() or 1, 4))) as pool:
        yield {
            (version, mode): pool.submit(venv_for, requirements[mode], python)
            for version, mode in sorted(wanted)
            if (python := interpreters[version]) is not None
        }


def command_for(mode: str, python: str, port: int, docker_dir: Path) -> tuple[list[str], Path, dict[str, str]]:
    """The command, its working directory and its environment: loopback only, on a free port."""
    if mode == "docker":
        command = cmd_of(docker_dir / "Dockerfile")
        assert command[:3] == ["python", "-m", "gpuserve.runtime"]
        command = [python, *command[1:]]
        command[command.index("--host") + 1] = "127.0.0.1"
        command[command.index("--port") + 1] = str(port)
        return command, docker_dir, {"PYTHONUNBUFFERED": "1"}
    command = [python, "-m", "gpuserve.cli", "serve", SLOW, "--host", "127.0.0.1", "--port", str(port)]
    return command, docker_dir.parent, {"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", PYTHON_VERSIONS)
def test_predict_past_its_timeout_answers_504(
    version: str,
    mode: str,
    interpreters: dict[str, str | None],
    venvs: dict[tuple[str, str], Future[Path]],
    docker_dir: Path,
) -> None:
    if interpreters[version] is None:
        pytest.skip(f"no Python {version} here: none under {PYENV_VERSIONS}, no usable python{version} on PATH")
    python = python_of(venvs[(version, mode)].result(timeout=300))
    running = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True)
    assert running.stdout.decode().strip() == version
    port = free_port()
    command, cwd, env = command_for(mode, python, port, docker_dir)
    with (
        started(command, cwd, env) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        wait_until(lambda: client.get("/health").status_code == 200, 60, f"health ({mode}, Python {version})", proc)
        quick = client.post("/predict", json={"input": {"seconds": 0}})
        assert quick.status_code == 200, quick.text
        assert quick.json()["output"] == "slept 0.0s"
        with ThreadPoolExecutor(max_workers=1) as pool:  # both forms at once (concurrency=2): JSON, and events
            events = pool.submit(_events_text, client)
            slow = client.post("/predict", json={"input": PAST_TIMEOUT})
            timeout_error = {"type": "Timeout", "message": "predict ran past timeout=1s"}
            assert slow.status_code == 504, slow.text
            assert slow.json()["error"] == timeout_error
            text = events.result(timeout=30)
        assert text.startswith("event: error\ndata: "), text
        assert json.loads(text.split("data: ", 1)[1]) == timeout_error


def _events_text(client: httpx.Client) -> str:
    headers = {"Accept": "text/event-stream"}
    with client.stream("POST", "/predict", json={"input": PAST_TIMEOUT}, headers=headers) as response:
        assert response.status_code == 200
        return "".join(response.iter_text())

"""Weights through the servers a container runs: fetched once per cache, found by weights_path in setup(),
and each start reported as phases in one structured log line and on /health."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gpuserve.build import build
from tests.apps import ROOT
from tests.integration.test_docker_target import cmd_of
from tests.proc import free_port, output_of, started, wait_until
from tests.venvs import python_of, requirement_lines, venv_for
from tests.weights_server import Behaviour, serving

BODY = b"tiny weights " * 1000
CONFIG = b'{"hidden": 8}'


def write_app(directory: Path, url: str) -> str:
    """A model whose setup reads a URL weight and a Local folder through gpuserve.weights_path."""
    (directory / "weights").mkdir(parents=True)
    (directory / "weights" / "config.json").write_bytes(CONFIG)
    digest = hashlib.sha256(BODY).hexdigest()
    (directory / "weighted.py").write_text(
        "import gpuserve\n\n\n"
        f"@gpuserve.model(weights=[gpuserve.URL({url!r}, sha256={digest!r}), gpuserve.Local('./weights')])\n"
        "class Weighted:\n"
        "    def setup(self) -> None:\n"
        f"        self.size = gpuserve.weights_path({url!r}).stat().st_size\n"
        "        self.config = (gpuserve.weights_path('./weights') / 'config.json').read_text()\n\n"
        "    def predict(self, x: int = 0) -> dict[str, object]:\n"
        "        return {'size': self.size, 'config': self.config}\n"
    )
    return f"{directory / 'weighted.py'}:Weighted"


@contextmanager
def running(command: list[str], cwd: Path, env: dict[str, str], port: int) -> Iterator[tuple[httpx.Client, str]]:
    with started(command, cwd, env) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        wait_until(lambda: client.get("/health").status_code == 200, 60, "ready", proc)
        answer = client.post("/predict", json={"input": {}})
        health = client.get("/health").json()
        yield client, json.dumps({"answer": answer.json()["output"], "health": health})
        proc.terminate()
        proc.wait(timeout=30)
        assert '"event": "started"' in output_of(proc)


@pytest.mark.parametrize("mode", ["serve", "docker"])
def test_weights_are_fetched_once_and_reported(mode: str, tmp_path: Path) -> None:
    behaviour = Behaviour(body=BODY)
    with serving(behaviour) as base:
        ref = write_app(tmp_path / "app", f"{base}/model.bin")
        cache = tmp_path / "cache"
        if mode == "serve":
            command, cwd = [sys.executable, "-m", "gpuserve.cli", "serve", ref], ROOT
        else:
            cwd = build(ref, "docker", tmp_path / "docker").directory
            assert (cwd / "weights" / "config.json").read_bytes() == CONFIG  # Local weights travel with the code
            command = [
                python_of(venv_for(requirement_lines(cwd / "requirements.txt"))),
                *cmd_of(cwd / "Dockerfile")[1:],
            ]
            command = command[: command.index("--host")]
        for start in ("first", "second"):
            port = free_port()
            env = {"GPUSERVE_CACHE_DIR": str(cache), "PATH": "/usr/bin:/bin"}
            with running([*command, "--host", "127.0.0.1", "--port", str(port)], cwd, env, port) as (_client, seen):
                report = json.loads(seen)
            assert report["answer"] == {"size": len(BODY), "config": CONFIG.decode()}, start
            phases = report["health"]["phases"]
            assert set(phases) == {"fetch", "load", "ready"}
            assert phases["fetch"]["bytes"] == len(BODY) + len(CONFIG)
        assert behaviour.full_gets == 1, "the second start found its cache complete and used no network"


def test_the_bake_step_renders_on_image_targets(tmp_path: Path) -> None:
    """bake=True weights become a build step on every target that builds an image, and the runtime looks there."""
    source = tmp_path / "baked.py"
    source.write_text(
        "import gpuserve\n\n\n"
        "@gpuserve.model(gpu='L40S', weights=[gpuserve.HuggingFace('org/tiny', bake=True)], secrets=['HF_TOKEN'])\n"
        "class Baked:\n"
        "    def predict(self, x: int = 0) -> int:\n        return x\n"
    )
    for target in ("docker", "runpod"):
        dockerfile = (build(str(source), target, tmp_path / target).directory / "Dockerfile").read_text()
        assert "RUN --mount=type=secret,id=HF_TOKEN,env=HF_TOKEN python -m gpuserve.runtime.weights baked:Baked" in (
            dockerfile
        )
        assert 'ENV GPUSERVE_WEIGHTS_DIRS="/opt/gpuserve/weights"' in dockerfile
    runpod = (tmp_path / "runpod" / "Dockerfile").read_text()
    assert 'ENV GPUSERVE_HF_CACHES="/runpod-volume/huggingface-cache/hub"' in runpod
    modal_app = (build(str(source), "modal", tmp_path / "modal").directory / "modal_app.py").read_text()
    assert (
        ".run_commands('cd /root && python -m gpuserve.runtime.weights baked:Baked --into /opt/gpuserve/weights'"
        in (modal_app)
    )
    cog_yaml = (build(str(source), "cog", tmp_path / "cog").directory / "cog.yaml").read_text()
    assert 'uri: "hf://org/tiny"' in cog_yaml and "GPUSERVE_WEIGHTS_DIRS=/src/gpuserve-weights" in cog_yaml

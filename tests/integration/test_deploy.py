"""`gpuserve deploy` run for real: fake docker, cog and modal executables that record their argv, and a stand-in
for RunPod's and Replicate's APIs on 127.0.0.1 that answers as their documents say and records every request.

Nothing here reaches a platform: the stand-in follows RunPod's v2 OpenAPI (tests/data/platforms) and Replicate's
documented deployments API; that is all these tests prove about the real services.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gpuserve.cli import ExitStatus
from tests.apps import HELLO, TEXT
from tests.unit.test_deploy_plans import SECRETS, runpod_validator, tool_runs, write_fake_tools

Answer = tuple[int, Any]


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str
    body: Any


@dataclass
class StandIn:
    """Answers (method, path) with the next scripted answer (the last one repeats); 404 for anything else."""

    answers: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    def answer(self, method: str, path: str, *answers: Answer) -> None:
        self.answers[(method, path)] = list(answers)

    def next(self, method: str, path: str) -> Answer:
        queue = self.answers.get((method, path))
        if not queue:
            return 404, {"title": "Not Found", "status": 404, "detail": f"{path} not found"}
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            state.requests.append(Recorded(self.command, self.path, self.headers.get("Authorization", ""), body))
            status, answer = state.next(self.command, self.path)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def env(tmp_path: Path, stand_in: StandIn) -> dict[str, str]:
    tools = write_fake_tools(tmp_path / "bin")
    return {
        "PATH": f"{tools}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FAKE_TOOLS_LOG": str(tmp_path / "tools.log"),
        "GPUSERVE_RUNPOD_API_URL": stand_in.url,
        "GPUSERVE_REPLICATE_API_URL": stand_in.url,
        **SECRETS,
    }


def deploy(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gpuserve.cli", "deploy", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def endpoint(endpoint_id: str, name: str = "hello") -> dict[str, Any]:
    urls = {"runSync": f"https://api.runpod.ai/v2/{endpoint_id}/runsync"}
    return {"id": endpoint_id, "name": name, "type": "QUEUE", "requestUrls": urls}


def test_runpod_builds_pushes_then_creates_and_later_updates_the_endpoint(
    env: dict[str, str], stand_in: StandIn, tmp_path: Path
) -> None:
    stand_in.answer("GET", "/v2/serverless", (200, {"endpoints": [endpoint("other1", "other")]}))
    stand_in.answer("POST", "/v2/serverless", (201, endpoint("ep123")))
    args = (HELLO.ref, "--target", "runpod", "--registry", "ghcr.io/acme", "--tag", "v1", "-o", "out")
    first = deploy(env, tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == 'RunPod endpoint ep123: POST https://api.runpod.ai/v2/ep123/runsync with {"input": {...}}\n'
    assert (tmp_path / "out" / "handler.py").is_file()  # step 1 rendered the directory
    runs = [(run["argv"], run["cwd"]) for run in tool_runs(tmp_path / "tools.log")]
    assert runs == [
        (["info", "--format", "{{.ServerVersion}}"], str(tmp_path)),
        (["build", "--platform", "linux/amd64", "-t", "ghcr.io/acme/hello:v1", "out"], str(tmp_path)),
        (["push", "ghcr.io/acme/hello:v1"], str(tmp_path)),
    ]
    created = stand_in.requests[-1]
    rendered = json.loads((tmp_path / "out" / "endpoint.json").read_text())
    assert (created.method, created.path, created.body) == (
        "POST",
        "/v2/serverless",
        rendered | {"image": "ghcr.io/acme/hello:v1"},
    )
    assert runpod_validator("CreateEndpointRequest").is_valid(created.body)
    assert {r.authorization for r in stand_in.requests} == {f"Bearer {SECRETS['RUNPOD_API_KEY']}"}

    stand_in.answer("GET", "/v2/serverless", (200, {"endpoints": [endpoint("other1", "other"), endpoint("ep123")]}))
    stand_in.answer("PATCH", "/v2/serverless/ep123", (200, endpoint("ep123")))
    second = deploy(env, tmp_path, *args[:-3], "v2", "-o", "out")
    assert second.returncode == 0, second.stderr
    updated = stand_in.requests[-1]
    assert (updated.method, updated.path) == ("PATCH", "/v2/serverless/ep123")
    assert updated.body == {k: v for k, v in created.body.items() if k != "type"} | {"image": "ghcr.io/acme/hello:v2"}
    assert runpod_validator("UpdateEndpointRequest").is_valid(updated.body)
    assert SECRETS["RUNPOD_API_KEY"] not in first.stderr + second.stderr


def test_replicate_stops_before_pushing_when_the_model_page_is_missing(
    env: dict[str, str], stand_in: StandIn, tmp_path: Path
) -> None:
    result = deploy(env, tmp_path, HELLO.ref, "--target", "replicate", "--model", "acme/hello", "-o", "out")
    assert result.returncode == ExitStatus.DEPLOY
    assert (
        "error: step 2 (Check that the model page exists (cog push needs it)) failed (step 1 finished" in result.stderr
    )
    assert "Fix: create it at https://replicate.com/create (owner acme, name hello)" in result.stderr
    assert [run["tool"] for run in tool_runs(tmp_path / "tools.log")] == ["docker"]  # docker info, no cog at all


def test_replicate_pushes_a_version_then_creates_and_later_moves_the_deployment(
    env: dict[str, str], stand_in: StandIn, tmp_path: Path
) -> None:
    model = {"owner": "acme", "name": "hello", "latest_version": {"id": "v-new-123"}}
    stand_in.answer("GET", "/v1/models/acme/hello", (200, model | {"latest_version": None}), (200, model))
    stand_in.answer("POST", "/v1/deployments", (201, {"owner": "acme", "name": "hello"}))
    args = (HELLO.ref, "--target", "replicate", "--model", "acme/hello", "-o", "out")
    first = deploy(env, tmp_path, *args)
    assert first.returncode == 0, first.stderr
    login, push = [run for run in tool_runs(tmp_path / "tools.log") if run["tool"] == "cog"]
    assert (login["argv"], login["stdin"]) == (["login", "--token-stdin"], SECRETS["REPLICATE_API_TOKEN"] + "\n")
    assert (push["argv"], push["cwd"]) == (["push", "r8.im/acme/hello"], str(tmp_path / "out"))
    assert SECRETS["REPLICATE_API_TOKEN"] not in first.stderr  # the fake cog prints it; the progress masks it
    assert "logged in with <REPLICATE_API_TOKEN: masked>" in first.stderr
    created = stand_in.requests[-1]
    hardware = {"hardware": "cpu", "min_instances": 0, "max_instances": 2}
    body = {"name": "hello", "model": "acme/hello", "version": "v-new-123"} | hardware
    assert (created.method, created.path, created.body) == ("POST", "/v1/deployments", body)
    assert "Replicate deployment acme/hello runs version v-new-123" in first.stdout

    stand_in.answer("GET", "/v1/deployments/acme/hello", (200, {"owner": "acme", "name": "hello"}))
    stand_in.answer("PATCH", "/v1/deployments/acme/hello", (200, {"owner": "acme", "name": "hello"}))
    second = deploy(env, tmp_path, *args)
    assert second.returncode == 0, second.stderr
    moved = stand_in.requests[-1]
    assert (moved.method, moved.path, moved.body) == (
        "PATCH",
        "/v1/deployments/acme/hello",
        {"version": "v-new-123"} | hardware,
    )


def test_modal_stores_secrets_through_a_file_then_deploys_in_the_built_directory(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = deploy(env, tmp_path, TEXT.ref, "--target", "modal", "--secrets-from-env", "--tag", "t7", "-o", "m")
    assert result.returncode == 0, result.stderr
    secret, deployed = tool_runs(tmp_path / "tools.log")
    assert secret["argv"][:5] == ["secret", "create", "--force", "HF_TOKEN", "--from-json"]
    assert secret["file"] == {"HF_TOKEN": SECRETS["HF_TOKEN"]}
    assert not Path(secret["argv"][5]).exists()  # removed once the command finished
    assert (deployed["argv"], deployed["cwd"]) == (["deploy", "modal_app.py", "--tag", "t7"], str(tmp_path / "m"))
    assert SECRETS["HF_TOKEN"] not in result.stderr + result.stdout


def test_api_calls_retry_a_busy_platform(env: dict[str, str], stand_in: StandIn, tmp_path: Path) -> None:
    busy = (503, {"title": "Service Unavailable", "status": 503, "detail": "try again"})
    stand_in.answer("GET", "/v2/serverless", busy, (200, {"endpoints": []}))
    stand_in.answer("POST", "/v2/serverless", (201, endpoint("ep9")))
    result = deploy(env, tmp_path, HELLO.ref, "--target", "runpod", "--image", "ghcr.io/acme/h:1", "-o", "out")
    assert result.returncode == 0, result.stderr
    assert [(r.method, r.path) for r in stand_in.requests] == [
        ("GET", "/v2/serverless"),
        ("GET", "/v2/serverless"),
        ("POST", "/v2/serverless"),
    ]


def test_a_failing_push_stops_the_deploy_with_its_output_and_the_fix(
    env: dict[str, str], stand_in: StandIn, tmp_path: Path
) -> None:
    env = env | {"FAKE_FAIL": "docker push"}
    result = deploy(env, tmp_path, HELLO.ref, "--target", "runpod", "--registry", "ghcr.io/acme", "--tag", "v1")
    assert result.returncode == ExitStatus.DEPLOY
    assert "error: step 3 (Push it to the registry) failed (steps 1-2 finished; nothing is undone):" in result.stderr
    assert "docker push ghcr.io/acme/hello:v1 exited with status 1; its last lines:" in result.stderr
    assert "    denied: requested access to the resource is denied" in result.stderr
    assert "Fix: log in to the registry (`docker login ghcr.io`)" in result.stderr
    assert stand_in.requests == []


def test_a_refused_token_is_named(env: dict[str, str], stand_in: StandIn, tmp_path: Path) -> None:
    stand_in.answer("GET", "/v2/serverless", (401, {"title": "Unauthorized", "status": 401, "detail": "bad key"}))
    result = deploy(env, tmp_path, HELLO.ref, "--target", "runpod", "--image", "ghcr.io/acme/h:1", "-o", "out")
    assert result.returncode == ExitStatus.DEPLOY
    assert (
        f"GET {stand_in.url}/v2/serverless answered 401: Unauthorized; bad key. Fix: the platform refused "
        in result.stderr
    )
    assert "RUNPOD_API_KEY" in result.stderr and SECRETS["RUNPOD_API_KEY"] not in result.stderr


def test_kubernetes_builds_pushes_stores_the_secret_then_applies_the_base_with_the_image(
    env: dict[str, str], tmp_path: Path
) -> None:
    args = (TEXT.ref, "--target", "kubernetes", "--registry", "ghcr.io/acme", "--tag", "v2", "--secrets-from-env")
    result = deploy(env, tmp_path, *args, "-o", "k")
    assert result.returncode == 0, result.stderr
    runs = [(run["tool"], run["argv"][:3]) for run in tool_runs(tmp_path / "tools.log")]
    assert runs == [
        ("docker", ["info", "--format", "{{.ServerVersion}}"]),
        ("docker", ["build", "-t", "ghcr.io/acme/text-generation:v2"]),
        ("docker", ["push", "ghcr.io/acme/text-generation:v2"]),
        ("kubectl", ["apply", "-f", "-"]),
        ("kustomize", ["edit", "set", "image"]),
        ("kubectl", ["apply", "-k", "k/k8s"]),
        ("kubectl", ["rollout", "status", "deployment/text-generation"]),
    ]
    secret, edit = tool_runs(tmp_path / "tools.log")[3:5]
    stored = json.loads(secret["stdin"])
    assert (stored["kind"], stored["metadata"]["name"]) == ("Secret", "text-generation-secrets")
    assert stored["stringData"] == {"HF_TOKEN": SECRETS["HF_TOKEN"]}
    assert edit["argv"][3:] == ["text-generation=ghcr.io/acme/text-generation:v2"]
    assert edit["cwd"] == str(tmp_path / "k" / "k8s") and (tmp_path / "k" / "k8s" / "kustomization.yaml").is_file()
    assert SECRETS["HF_TOKEN"] not in result.stderr + result.stdout


def test_skypilot_builds_pushes_then_serves_up_the_pushed_image_with_secrets_by_name(
    env: dict[str, str], tmp_path: Path
) -> None:
    args = (TEXT.ref, "--target", "skypilot", "--registry", "ghcr.io/acme", "--tag", "v2")
    result = deploy(env, tmp_path, *args, "-o", "s")
    assert result.returncode == 0, result.stderr
    runs = tool_runs(tmp_path / "tools.log")
    assert [(run["tool"], run["argv"][:2]) for run in runs] == [
        ("docker", ["info", "--format"]),
        ("docker", ["build", "-t"]),
        ("docker", ["push", "ghcr.io/acme/text-generation:v2"]),
        ("sky", ["serve", "up"]),
    ]
    assert runs[3]["argv"][2:] == [
        "-n",
        "text-generation",
        "s/service.yaml",
        "--image-id",
        "docker:ghcr.io/acme/text-generation:v2",
        "--secret",
        "HF_TOKEN",
        "--yes",
    ]
    assert (tmp_path / "s" / "service.yaml").is_file()
    assert SECRETS["HF_TOKEN"] not in result.stderr + result.stdout + json.dumps(runs)

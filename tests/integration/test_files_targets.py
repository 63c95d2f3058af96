"""Files through every target's own local runtime: the same bytes in, the same answers and refusals out.

Each target is built, copied away and run the way its platform runs it offline: `gpuserve serve`, the Docker
image's command, RunPod's local API, cog's server (which fetches Path inputs itself) and Modal's `.local()`
method and ASGI app. Inputs come as a data: URI, a URL on a file server the test starts, and (on the HTTP
servers) a multipart upload.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gpuserve.adapters._common import PINS
from gpuserve.build import build
from tests.integration.test_cog_target import post
from tests.integration.test_docker_target import cmd_of
from tests.integration.test_outputs_upload import s3_endpoint  # noqa: F401  # the moto S3 fixture
from tests.proc import free_port, started, wait_until
from tests.venvs import python_of, requirement_lines, venv_for

ROOT = Path(__file__).resolve().parents[2]
DIGEST = f"{ROOT}/tests/models/fileio.py:FileDigest"
REVERSE = f"{ROOT}/tests/models/fileio.py:FileReverse"
FRAMES = f"{ROOT}/tests/models/fileio.py:FileFrames"
DRIVER = ROOT / "tests" / "modal_driver.py"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
TARGETS = ["local", "docker", "runpod", "cog", "modal"]
HTTP_SERVERS = ["local", "docker", "modal"]  # the gpuserve HTTP contract (Modal's web endpoint serves it)


def targets(*in_make_test: str, but: str = "") -> list[Any]:
    """Every target (but one); those not named run in `make test-full` only (the same code as one named)."""
    return [t if t in in_make_test else pytest.param(t, marks=pytest.mark.full) for t in TARGETS if t != but]


def data_uri(data: bytes, content_type: str = "image/png") -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def decoded(uri: str) -> bytes:
    assert uri.startswith("data:image/png;base64,"), uri[:60]
    return base64.b64decode(uri.split(",", 1)[1])


@dataclass(frozen=True)
class Answer:
    ok: bool
    output: Any = None
    error: str = ""  # "<status or platform> <kind>: <message>"


Ask = Callable[[dict[str, Any]], Answer]


class FileServer(http.server.BaseHTTPRequestHandler):
    """GET /cat.png gives PNG; PUT /up/NAME stores the body (an upload destination, as cog's --upload-url)."""

    stored: dict[str, tuple[bytes, str]] = {}

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def do_PUT(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        FileServer.stored[self.path] = (body, self.headers.get("Content-Type", ""))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def file_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FileServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def http_ask(client: httpx.Client) -> Ask:
    def ask(inputs: dict[str, Any]) -> Answer:
        response = client.post("/predict", json={"input": inputs})
        if response.status_code == 200:
            return Answer(True, response.json()["output"])
        error = response.json()["error"]
        return Answer(False, error=f"{response.status_code} {error['type']}: {error['message']}")

    return ask


@contextmanager
def running(target: str, ref: str, tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[Ask, httpx.Client | None]]:
    """The target serving `ref`, and how to ask it; the HTTP client too where it speaks gpuserve's contract."""
    env = env | {"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    port = free_port()
    if target == "local":
        command = [sys.executable, "-m", "gpuserve.cli", "serve", ref, "--host", "127.0.0.1", "--port", str(port)]
        with started(command, ROOT, env) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            wait_until(lambda: c.get("/health").status_code == 200, 60, "local server", proc)
            yield http_ask(c), c
        return
    directory = build(ref, target, tmp_path / target).directory
    requirements = requirement_lines(directory / "requirements.txt")
    if target == "docker":
        command = cmd_of(directory / "Dockerfile")
        command = [python_of(venv_for(requirements)), *command[1:]]
        command[command.index("--host") + 1] = "127.0.0.1"
        command[command.index("--port") + 1] = str(port)
        with started(command, directory, env) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            wait_until(lambda: c.get("/health").status_code == 200, 90, "docker command", proc)
            yield http_ask(c), c
    elif target == "runpod":
        python = python_of(venv_for(requirements))
        command = [python, "handler.py", "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
        with (
            started(command, directory, env) as proc,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c,
        ):
            wait_until(lambda: c.get("/openapi.json").status_code == 200, 60, "runpod API", proc)

            def ask_runpod(inputs: dict[str, Any]) -> Answer:
                done = c.post("/runsync", json={"input": inputs}).json()
                if done["status"] == "COMPLETED":
                    return Answer(True, done["output"])
                return Answer(False, error=f"runpod {done['error']}")

            yield ask_runpod, None
    elif target == "cog":
        venv = venv_for([*requirements, f"cog=={PINS['cog']}"])
        config = yaml.safe_load((directory / "cog.yaml").read_text())
        cog_env = env | {
            "PORT": str(port),
            "COG_PREDICT_TYPE_STUB": config["run"],
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        }
        command = [str(venv / "bin" / "python"), "-m", "cog.server.http", "--host", "127.0.0.1"]
        if "UPLOAD_URL" in env:
            command += ["--upload-url", env["UPLOAD_URL"]]
        with (
            started(command, directory, cog_env) as proc,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c,
        ):
            wait_until(lambda: c.get("/health-check").json()["status"] == "READY", 90, "cog READY", proc)

            def ask_cog(inputs: dict[str, Any]) -> Answer:
                response = post(c, {"input": inputs})
                body = response.json()
                if response.status_code == 200 and body["status"] == "succeeded":
                    return Answer(True, body["output"])
                return Answer(False, error=f"cog {response.status_code} {body.get('error') or body.get('detail')}")

            yield ask_cog, None
    elif target == "modal":
        python = python_of(venv_for([*requirements, f"modal=={PINS['modal']}"]))
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        modal_env = env | {"HOME": str(home), "MODAL_TOKEN_ID": "", "MODAL_TOKEN_SECRET": ""}
        class_name = ref.rsplit(":", 1)[1]
        with (
            started([python, str(DRIVER), "serve", class_name, str(port)], directory, modal_env) as proc,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c,
        ):
            wait_until(lambda: c.get("/health").status_code == 200, 90, "modal web endpoint", proc)
            yield http_ask(c), c
    else:
        raise AssertionError(target)


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("target", TARGETS)
def test_file_inputs_arrive_the_same_and_are_refused_the_same(target: str, tmp_path: Path, file_port: int) -> None:
    env = {"GPUSERVE_ALLOW_URLS": "localhost"}
    with running(target, DIGEST, tmp_path, env) as (ask, client):
        by_data = ask({"data": data_uri(PNG)})
        assert by_data.ok, by_data.error
        assert by_data.output["sha256"] == digest_of(PNG) and by_data.output["content_type"] == "image/png"
        by_url = ask({"data": f"http://localhost:{file_port}/cat.png"})
        assert by_url.ok and by_url.output["sha256"] == digest_of(PNG), by_url.error

        too_large = ask({"data": data_uri(b"x" * 5000)})
        wrong_type = ask({"data": data_uri(b"%PDF-1.4", "application/pdf")})
        server_path = ask({"data": "/etc/hostname"})
        private = ask({"data": f"http://127.0.0.1:{file_port}/cat.png"})
        assert not too_large.ok and "FileTooLarge" in too_large.error or "over 4096 bytes" in too_large.error
        assert not wrong_type.ok and "application/pdf" in wrong_type.error
        assert not server_path.ok and "hostname" not in json.dumps(server_path.output)
        if target == "cog":  # cog fetches Path inputs itself, by its own rules: the file server is reachable
            assert private.ok and private.output["sha256"] == digest_of(PNG)
        else:
            assert not private.ok and "URLNotAllowed" in private.error, private
        if target in HTTP_SERVERS:
            assert too_large.error.startswith("413 FileTooLarge")
            assert wrong_type.error.startswith("415 UnsupportedFileType")
            assert server_path.error.startswith("422 InvalidInput")
        if client is not None and target != "modal":
            uploaded = client.post("/predict", files={"data": ("cat.png", PNG, "image/png")}, data={"note": "x"})
            assert uploaded.status_code == 200, uploaded.text
            assert uploaded.json()["output"]["sha256"] == digest_of(PNG)


@pytest.mark.parametrize("target", targets("local", "cog"))  # examples/image-filter runs on all in make test
def test_file_outputs_come_back_as_the_same_data_uri(target: str, tmp_path: Path) -> None:
    with running(target, REVERSE, tmp_path, {}) as (ask, _client):
        answer = ask({"data": data_uri(PNG), "times": 2})
        assert answer.ok, answer.error
        assert decoded(answer.output) == PNG[::-1] * 2


@pytest.mark.parametrize("target", targets("local", "runpod", "cog"))
def test_streamed_files_come_back_as_data_uris(target: str, tmp_path: Path) -> None:
    with running(target, FRAMES, tmp_path, {}) as (ask, _client):
        answer = ask({"count": 3})
        assert answer.ok, answer.error
        assert [decoded(chunk) for chunk in answer.output] == [bytes([i]) * 10 for i in range(3)]


@pytest.mark.parametrize("target", TARGETS)
def test_file_outputs_are_uploaded_to_a_put_destination(target: str, tmp_path: Path, file_port: int) -> None:
    prefix = f"http://127.0.0.1:{file_port}/up/{target}/"
    env = {"GPUSERVE_OUTPUT_URL": prefix, "UPLOAD_URL": prefix}  # cog: the server's own --upload-url
    with running(target, REVERSE, tmp_path, env) as (ask, _client):
        answer = ask({"data": data_uri(PNG)})
        assert answer.ok, answer.error
        path = "/" + answer.output.split("/", 3)[3].split("?", 1)[0]
        assert answer.output.startswith(prefix)
        body, _content_type = FileServer.stored[path]
        assert body == PNG[::-1]


def test_modal_method_takes_bytes_and_urls(tmp_path: Path, file_port: int) -> None:
    directory = build(DIGEST, "modal", tmp_path / "modal").directory
    python = python_of(venv_for([*requirement_lines(directory / "requirements.txt"), f"modal=={PINS['modal']}"]))
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "GPUSERVE_ALLOW_URLS": "localhost", "PATH": "/usr/bin:/bin"}
    for given in ({"$bytes": base64.b64encode(PNG).decode()}, f"http://localhost:{file_port}/cat.png"):
        import subprocess

        result = subprocess.run(
            [python, str(DRIVER), "predict", "FileDigest", json.dumps({"data": given})],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.splitlines()[-1])["sha256"] == digest_of(PNG)


@pytest.mark.parametrize("target", targets("local", "runpod", but="cog"))  # cog delivers its own
def test_file_outputs_are_uploaded_to_s3(target: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    endpoint: str = request.getfixturevalue("s3_endpoint")  # moto's S3 on loopback, bucket `outputs`
    env = {
        "GPUSERVE_OUTPUT_S3": f"s3://outputs/{target}",
        "GPUSERVE_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with running(target, REVERSE, tmp_path, env) as (ask, _client):
        answer = ask({"data": data_uri(PNG)})
        assert answer.ok, answer.error
        assert answer.output.startswith(f"{endpoint}/outputs/{target}/")
        assert httpx.get(answer.output).content == PNG[::-1]

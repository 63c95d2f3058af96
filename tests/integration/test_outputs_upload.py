"""Output files uploaded for real: a PUT server and an S3 store (moto in server mode), both on 127.0.0.1.

First the destinations alone, then through `gpuserve serve`: a presigned S3 URL as the answer, an upload that
fails as a failed predict, and a wrong setting as a failed start. (The data: URI default and the PUT answer
through every target are in test_files_targets.py.)
"""

from __future__ import annotations

import base64
import http.server
import logging
import re
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from gpuserve.files import File
from gpuserve.runtime.outputs import OutputUploadFailed, destination_from_env
from tests.proc import free_port, started, wait_until

ROOT = Path(__file__).resolve().parents[2]
REVERSE = f"{ROOT}/tests/models/fileio.py:FileReverse"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2
FRESH_PNG = r"[0-9a-f]{32}\.png"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class Put:
    path: str
    content_type: str
    body: bytes


@dataclass
class PutServer:
    """Answers by the path's first part: ok 200, moved 201 with a relative Location, redirect 307 to ok,
    flaky 503 then 200, down 503 always, denied 403. Records every request."""

    port: int = 0
    seen: list[Put] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def put_server() -> Iterator[PutServer]:
    state = PutServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.seen.append(Put(self.path, self.headers.get("Content-Type", ""), body))
            mode = self.path.split("/")[1]
            flaky_again = mode == "flaky" and sum(p.path == self.path for p in state.seen) > 1
            if mode == "redirect":
                self.answer(307, {"Location": self.path.replace("/redirect/", "/ok/", 1)})
            elif mode == "moved":
                self.answer(201, {"Location": "/files/" + self.path.rsplit("/", 1)[1].split("?")[0]})
            else:
                self.answer({"ok": 200, "down": 503, "denied": 403}.get(mode, 200 if flaky_again else 503))

        def answer(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 in server mode on a free loopback port, with the bucket `outputs` made."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3_client(endpoint).create_bucket(Bucket="outputs")
        yield endpoint
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def png_file() -> File:
    return File.from_bytes(PNG, content_type="image/png")


# HTTP PUT --------------------------------------------------------------------------------------
def test_put_sends_the_bytes_and_type_and_answers_the_url_without_its_query(put_server: PutServer) -> None:
    destination = destination_from_env({"GPUSERVE_OUTPUT_URL": f"{put_server.base}/ok/run?token=t0k"})
    url = destination.deliver(png_file(), "image/png")
    (put,) = put_server.seen
    assert re.fullmatch(rf"/ok/run/{FRESH_PNG}\?token=t0k", put.path), put.path
    assert (put.content_type, put.body) == ("image/png", PNG)
    assert url == put_server.base + put.path.split("?")[0]


def test_put_answers_the_location_header_resolved(put_server: PutServer) -> None:
    url = destination_from_env({"GPUSERVE_OUTPUT_URL": f"{put_server.base}/moved/"}).deliver(png_file(), "image/png")
    assert re.fullmatch(rf"{put_server.base}/files/{FRESH_PNG}", url), url


def test_put_follows_a_redirect_and_answers_where_it_landed(put_server: PutServer) -> None:
    url = destination_from_env({"GPUSERVE_OUTPUT_URL": f"{put_server.base}/redirect/"}).deliver(png_file(), "image/png")
    assert [(urllib.parse.urlsplit(put.path).path.split("/")[1], put.body) for put in put_server.seen] == [
        ("redirect", PNG),
        ("ok", PNG),
    ]
    assert url == put_server.base + put_server.seen[1].path


def test_a_failing_put_is_retried_once_then_names_status_and_url_without_credentials(put_server: PutServer) -> None:
    prefix = f"http://uploader:hunter2@127.0.0.1:{put_server.port}/down/?token=hunter2"
    with pytest.raises(OutputUploadFailed) as raised:
        destination_from_env({"GPUSERVE_OUTPUT_URL": prefix}).deliver(png_file(), "image/png")
    assert raised.value.status == 503 and len(put_server.seen) == 2
    assert re.fullmatch(rf"{put_server.base}/down/{FRESH_PNG}", raised.value.url)
    message = str(raised.value)
    assert "the PUT answered 503 Service Unavailable (tried twice)" in message and "GPUSERVE_OUTPUT_URL" in message
    assert "hunter2" not in message


def test_a_put_that_fails_once_succeeds_on_the_retry(put_server: PutServer) -> None:
    url = destination_from_env({"GPUSERVE_OUTPUT_URL": f"{put_server.base}/flaky/"}).deliver(png_file(), "image/png")
    assert len(put_server.seen) == 2 and url == put_server.base + put_server.seen[1].path


def test_a_refused_put_is_not_retried(put_server: PutServer) -> None:
    with pytest.raises(OutputUploadFailed, match="answered 403 Forbidden") as raised:
        destination_from_env({"GPUSERVE_OUTPUT_URL": f"{put_server.base}/denied/"}).deliver(png_file(), "image/png")
    assert raised.value.status == 403 and len(put_server.seen) == 1


def test_an_unreachable_put_server_fails_naming_the_connection_error() -> None:
    prefix = f"http://127.0.0.1:{free_port()}/up/"
    with pytest.raises(OutputUploadFailed, match=r"ConnectError: .*\(tried twice\)") as raised:
        destination_from_env({"GPUSERVE_OUTPUT_URL": prefix}).deliver(png_file(), "image/png")
    assert raised.value.status is None


# S3 --------------------------------------------------------------------------------------------
def test_s3_upload_reads_back_and_its_presigned_url_gives_the_same_bytes(s3_endpoint: str) -> None:
    env = {"GPUSERVE_OUTPUT_S3": "s3://outputs/runs/1", "GPUSERVE_S3_ENDPOINT_URL": s3_endpoint, **KEYS}
    url = destination_from_env(env).deliver(png_file(), "image/png")
    parts = urllib.parse.urlsplit(url)
    assert re.fullmatch(rf"/outputs/runs/1/{FRESH_PNG}", parts.path), url
    assert urllib.parse.parse_qs(parts.query)["X-Amz-Expires"] == ["604800"]
    stored = s3_client(s3_endpoint).get_object(Bucket="outputs", Key=parts.path.split("/", 2)[2])
    assert (stored["Body"].read(), stored["ContentType"]) == (PNG, "image/png")
    fetched = httpx.get(url, timeout=30)
    assert (fetched.status_code, fetched.content) == (200, PNG)


def test_s3_takes_runpods_variables_and_the_url_lifetime(s3_endpoint: str) -> None:
    env = {
        "GPUSERVE_OUTPUT_S3": "s3://outputs",
        "BUCKET_ENDPOINT_URL": s3_endpoint,
        "BUCKET_ACCESS_KEY_ID": "testing",
        "BUCKET_SECRET_ACCESS_KEY": "testing",
        "GPUSERVE_S3_URL_SECONDS": "60",
    }
    url = destination_from_env(env).deliver(png_file(), "image/png")
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Expires"] == ["60"]
    assert httpx.get(url, timeout=30).content == PNG


def test_s3_upload_to_a_missing_bucket_names_it_and_the_status(s3_endpoint: str) -> None:
    env = {"GPUSERVE_OUTPUT_S3": "s3://no-such-bucket/x", "GPUSERVE_S3_ENDPOINT_URL": s3_endpoint, **KEYS}
    with pytest.raises(OutputUploadFailed, match=r"s3://no-such-bucket/x/.* failed: NoSuchBucket \(404\)") as raised:
        destination_from_env(env).deliver(png_file(), "image/png")
    assert raised.value.status == 404 and "testing" not in str(raised.value)


# through the local server ----------------------------------------------------------------------
def serve_command() -> tuple[list[str], int]:
    port = free_port()
    return [sys.executable, "-m", "gpuserve.cli", "serve", REVERSE, "--host", "127.0.0.1", "--port", str(port)], port


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_local_server_answers_a_presigned_s3_url(s3_endpoint: str) -> None:
    env = {"GPUSERVE_OUTPUT_S3": "s3://outputs/served", "GPUSERVE_S3_ENDPOINT_URL": s3_endpoint, **KEYS}
    command, port = serve_command()
    with started(command, ROOT, env) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        wait_until(lambda: client.get("/health").status_code == 200, 60, "local server", proc)
        response = client.post("/predict", json={"input": {"data": data_uri(PNG), "times": 2}})
        assert response.status_code == 200, response.text
        url = response.json()["output"]
    assert url.startswith(f"{s3_endpoint}/outputs/served/")
    assert httpx.get(url, timeout=30).content == PNG[::-1] * 2


def test_local_server_fails_the_predict_whose_upload_fails(put_server: PutServer) -> None:
    env = {"GPUSERVE_OUTPUT_URL": f"{put_server.base}/down/"}
    command, port = serve_command()
    with started(command, ROOT, env) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        wait_until(lambda: client.get("/health").status_code == 200, 60, "local server", proc)
        response = client.post("/predict", json={"input": {"data": data_uri(PNG)}})
        still_ready = client.get("/health").status_code
    error = response.json()["error"]
    assert (response.status_code, error["type"]) == (500, "OutputUploadFailed")
    assert "503" in error["message"] and f"{put_server.base}/down/" in error["message"]
    assert len(put_server.seen) == 2 and still_ready == 200


def test_local_server_refuses_to_start_with_a_wrong_destination() -> None:
    env = {"GPUSERVE_OUTPUT_URL": "ftp://files.example.com/out/"}
    command, port = serve_command()
    with started(command, ROOT, env) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        wait_until(lambda: client.get("/health").json()["status"] == "failed", 60, "a failed start", proc)
        health = client.get("/health").json()
    assert "GPUSERVE_OUTPUT_URL='ftp://files.example.com/out/': has the scheme 'ftp'" in health["error"]

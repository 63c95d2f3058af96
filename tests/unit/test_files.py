"""gpuserve.File: what a client's value may be, what predict sees, and the limits on fetching it."""

from __future__ import annotations

import base64
import http.server
import ipaddress
import pathlib
import threading
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, ValidationError

import gpuserve
from gpuserve.files import CONTEXT_KEY, OUTPUT, TRUSTED_PATHS, File, FileLimits, holds_file
from gpuserve.runtime.files import FetchPolicy, FileRefused, discard, fetch_inputs, file_fields
from gpuserve.signature import files_for_paths, inspect_predict

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
LOCAL = FetchPolicy(hosts=frozenset({"localhost"}), timeout=5)


class One(BaseModel):
    data: Annotated[File, FileLimits(max_bytes=1000, content_types=("image/*",))]


class Many(BaseModel):
    items: list[File]
    maybe: File | None = None


def data_uri(data: bytes, content_type: str = "image/png") -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def fetched(model: type[BaseModel], raw: dict[str, Any], policy: FetchPolicy = LOCAL) -> tuple[BaseModel, list[File]]:
    value = model.model_validate(raw)
    return value, fetch_inputs(value, policy)


# what a client's value may be --------------------------------------------------------
@pytest.mark.parametrize("given", ["/etc/hostname", "file:///etc/hostname", "./x.png", "~/x", "ftp://h/x.png"])
def test_paths_and_other_schemes_are_refused_at_validation(given: str) -> None:
    with pytest.raises(ValidationError, match="never read"):
        One.model_validate_json(f'{{"data": "{given}"}}', strict=True)


def test_a_path_object_is_refused_unless_the_platform_fetched_it(tmp_path: pathlib.Path) -> None:
    local = tmp_path / "x.png"
    local.write_bytes(PNG)
    with pytest.raises(ValidationError, match="a path on the server is not an input"):
        One.model_validate({"data": local})
    trusted = One.model_validate({"data": local}, context={CONTEXT_KEY: TRUSTED_PATHS})
    assert trusted.data == local and trusted.data.source is None and trusted.data.content_type == "image/png"


def test_validation_records_the_source_and_reads_nothing() -> None:
    value = One.model_validate_json(f'{{"data": "{data_uri(PNG)}"}}', strict=True)
    assert isinstance(value.data, pathlib.Path)
    assert value.data.source == data_uri(PNG) and not value.data.exists()
    assert value.data.suffix == ".png" and value.data.content_type == "image/png"


def test_the_schema_says_uri() -> None:
    assert One.model_json_schema()["properties"]["data"] == {"format": "uri", "title": "Data", "type": "string"}


def test_file_limits_report_every_problem() -> None:
    with pytest.raises(ValueError) as raised:
        FileLimits(max_bytes=0, content_types=("png",))
    assert "max_bytes=0" in str(raised.value) and "'png'" in str(raised.value)


def test_file_limits_match_families() -> None:
    limits = FileLimits(content_types=("image/*", "audio/wav"))
    assert limits.allows("image/png; q=1") and limits.allows("audio/wav")
    assert not limits.allows("audio/mpeg") and not limits.allows("application/octet-stream")


# what predict's annotations mean -------------------------------------------------------
def test_pathlib_path_in_predict_means_file() -> None:
    assert files_for_paths(pathlib.Path) is File
    assert files_for_paths(list[pathlib.Path]) == list[File]
    assert files_for_paths(pathlib.Path | None) == File | None
    assert files_for_paths(Annotated[pathlib.Path, FileLimits(max_bytes=5)]) == Annotated[File, FileLimits(max_bytes=5)]


class Inner(BaseModel):
    where: pathlib.Path


def test_a_path_inside_an_input_model_is_refused() -> None:
    class Model:
        def predict(self, inp: Inner) -> str:
            return str(inp.where)

    signature, problems = inspect_predict(Model)
    assert signature is None
    assert [(p.value, p.hint) for p in problems] == [("where", "annotate where as gpuserve.File")]


def test_file_fields_and_holds_file_see_nested_files() -> None:
    class Nested(BaseModel):
        inner: Many

    assert set(file_fields(Nested)) == {"inner"} and holds_file(list[File]) and not holds_file(list[str])


# fetching --------------------------------------------------------------------------------
def test_data_uri_base64_and_bytes_become_local_files() -> None:
    value, made = fetched(Many, {"items": [data_uri(b"one", "text/plain"), base64.b64encode(b"two").decode()]})
    first, second = value.items  # type: ignore[attr-defined]
    assert first.read_bytes() == b"one" and first.content_type == "text/plain"
    assert second.read_bytes() == b"two" and second.content_type == "application/octet-stream"  # nothing to sniff
    assert made == [first, second]
    discard(made)
    assert not first.exists() and not first.parent.exists()


def test_bytes_from_a_python_caller_are_the_file() -> None:
    value, made = fetched(Many, {"items": [b"raw"]})
    assert value.items[0].read_bytes() == b"raw"  # type: ignore[attr-defined]
    discard(made)


def test_too_large_is_413_and_names_the_field() -> None:
    with pytest.raises(FileRefused) as refused:
        fetched(One, {"data": data_uri(b"x" * 1001)})
    assert refused.value.status == 413 and refused.value.errors[0]["loc"] == ["input", "data"]


def test_a_type_not_allowed_is_415_and_says_what_is() -> None:
    with pytest.raises(FileRefused) as refused:
        fetched(One, {"data": data_uri(b"%PDF", "application/pdf")})
    assert refused.value.status == 415 and "allowed: image/*" in str(refused.value)


def test_text_that_is_not_base64_is_422() -> None:
    with pytest.raises(FileRefused) as refused:
        fetched(Many, {"items": ["not base64 at all!"]})
    assert refused.value.status == 422 and refused.value.kind == "InvalidFile"


def test_a_refusal_removes_what_was_already_fetched() -> None:
    value = Many.model_validate({"items": [data_uri(b"ok", "text/plain"), "%%%"]})
    with pytest.raises(FileRefused):
        fetch_inputs(value, LOCAL)
    assert not value.items[0].exists()


class Files(http.server.BaseHTTPRequestHandler):
    """/png: a PNG; /big: more than the limit with no Content-Length; /to-private: a redirect to 127.0.0.1."""

    def do_GET(self) -> None:  # noqa: N802
        port = self.server.server_address[1]  # type: ignore[index]
        if self.path == "/png":
            self._send(200, PNG, "image/png")
        elif self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(b"x" * 5000)
        elif self.path == "/to-private":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/png")
            self.end_headers()
        elif self.path == "/to-png":
            self.send_response(302)
            self.send_header("Location", "/png")
            self.end_headers()
        else:
            self._send(404, b"no", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def file_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_an_allowed_url_is_fetched_with_its_type(file_server: int) -> None:
    value, made = fetched(One, {"data": f"http://localhost:{file_server}/png"})
    assert value.data.read_bytes() == PNG and value.data.content_type == "image/png"  # type: ignore[attr-defined]
    discard(made)


def test_a_relative_redirect_is_followed(file_server: int) -> None:
    value, made = fetched(One, {"data": f"http://localhost:{file_server}/to-png"})
    assert value.data.read_bytes() == PNG  # type: ignore[attr-defined]
    discard(made)


def test_a_private_address_is_refused_by_default(file_server: int) -> None:
    with pytest.raises(FileRefused) as refused:
        fetched(One, {"data": f"http://127.0.0.1:{file_server}/png"}, FetchPolicy())
    assert refused.value.kind == "URLNotAllowed" and "GPUSERVE_ALLOW_URLS" in str(refused.value)


def test_a_redirect_to_a_private_address_is_checked_again(file_server: int) -> None:
    with pytest.raises(FileRefused) as refused:
        fetched(One, {"data": f"http://localhost:{file_server}/to-private"})
    assert refused.value.kind == "URLNotAllowed"


def test_a_download_past_the_limit_stops_at_413(file_server: int) -> None:
    with pytest.raises(FileRefused) as refused:
        fetched(One, {"data": f"http://localhost:{file_server}/big"})
    assert refused.value.status == 413


def test_a_failed_download_names_the_status_without_the_query(file_server: int) -> None:
    with pytest.raises(FileRefused) as refused:
        fetched(One, {"data": f"http://localhost:{file_server}/gone?signature=secret"})
    assert "HTTP 404" in str(refused.value) and "secret" not in str(refused.value)


def test_the_policy_reads_hosts_networks_and_numbers() -> None:
    policy = FetchPolicy.from_env(
        {"GPUSERVE_ALLOW_URLS": "minio.internal, 10.0.0.0/8", "GPUSERVE_DOWNLOAD_TIMEOUT": "7"}
    )
    assert policy.allows("minio.internal", ipaddress.ip_address("192.168.1.1"))
    assert policy.allows("other", ipaddress.ip_address("10.1.2.3"))
    assert not policy.allows("other", ipaddress.ip_address("192.168.1.1"))
    assert policy.allows("example.com", ipaddress.ip_address("93.184.216.34"))
    assert policy.timeout == 7
    with pytest.raises(ValueError, match="GPUSERVE_DOWNLOAD_TIMEOUT='soon'"):
        FetchPolicy.from_env({"GPUSERVE_DOWNLOAD_TIMEOUT": "soon"})


# outputs ---------------------------------------------------------------------------------
def test_from_bytes_writes_a_file_gpuserve_removes() -> None:
    made = gpuserve.File.from_bytes(b"hi", content_type="image/png")
    assert made.read_bytes() == b"hi" and made.suffix == ".png" and made.owned
    discard([made])
    assert not made.exists()


def test_an_output_path_becomes_a_file_and_a_string_does_not() -> None:
    class Out(BaseModel):
        result: File

    read = Out.model_validate({"result": pathlib.Path("/tmp/x.jpg")}, context={CONTEXT_KEY: OUTPUT})
    assert read.result.content_type == "image/jpeg"
    with pytest.raises(ValidationError, match="return a pathlib.Path"):
        Out.model_validate({"result": "/tmp/x.jpg"}, context={CONTEXT_KEY: OUTPUT})


def test_bytes_without_a_type_are_typed_by_their_signature() -> None:
    value, made = fetched(One, {"data": PNG})
    assert value.data.content_type == "image/png"  # type: ignore[attr-defined]
    discard(made)
    value, made = fetched(One, {"data": base64.b64encode(PNG).decode()})
    assert value.data.content_type == "image/png"  # type: ignore[attr-defined]
    discard(made)

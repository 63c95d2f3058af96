"""Output files without a network: data: URIs as cog writes them, the settings' checks, names and URLs."""

from __future__ import annotations

import base64
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpuserve.errors import ProblemsError
from gpuserve.files import File
from gpuserve.runtime.outputs import (
    DEFAULT_URL_SECONDS,
    DataUri,
    DestinationError,
    HttpPut,
    S3Bucket,
    _fresh_name,
    check_destination,
    content_type_of,
    destination_from_env,
)

FRESH = re.compile(r"^[0-9a-f]{32}(\.[a-z0-9]+)?$")


def test_data_uri_round_trips_the_bytes_and_type() -> None:
    data = bytes(range(256)) * 3
    made = File.from_bytes(data, content_type="image/png")
    uri = DataUri().deliver(made, content_type_of(made))
    head, encoded = uri.split(",", 1)
    assert head == "data:image/png;base64"
    assert base64.b64decode(encoded, validate=True) == data


@pytest.mark.parametrize(
    ("name", "cog_answer"),
    [  # what cog 0.23.1's server answered for a Path holding these bytes (no --upload-url), read from its output
        ("result.png", "data:image/png;base64,iVBORy1ieXRlcwD/cG5n"),
        ("result.weird", "data:application/octet-stream;base64,iVBORy1ieXRlcwD/d2VpcmQ="),
        ("result.txt", "data:text/plain;base64,iVBORy1ieXRlcwD/dHh0"),
    ],
)
def test_data_uri_reads_the_same_as_cogs(tmp_path: Path, name: str, cog_answer: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x89PNG-bytes\x00\xff" + name.split(".")[1].encode())
    assert DataUri().deliver(path, content_type_of(path)) == cog_answer


def test_content_type_is_the_files_own_then_the_suffixs(tmp_path: Path) -> None:
    declared = File.of(tmp_path / "x.bin", content_type="audio/wav")
    assert content_type_of(declared) == "audio/wav"
    assert content_type_of(tmp_path / "photo.jpg") == "image/jpeg"
    assert content_type_of(tmp_path / "no-suffix") == "application/octet-stream"


def test_content_type_parameters_are_compacted_and_a_malformed_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"hi")
    assert DataUri().deliver(path, "text/plain; charset=utf-8") == "data:text/plain;charset=utf-8;base64,aGk="
    with pytest.raises(ValueError, match=r"content_type='image png' is not a media type: give type/subtype"):
        DataUri().deliver(path, "image png")


def test_no_setting_means_data_uris() -> None:
    assert check_destination({}) == []
    assert isinstance(destination_from_env({}), DataUri)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"GPUSERVE_OUTPUT_URL": "https://h/p/", "GPUSERVE_OUTPUT_S3": "s3://bucket"},
            "GPUSERVE_OUTPUT_URL and GPUSERVE_OUTPUT_S3='https://h/p/ and s3://bucket': both are set",
        ),
        ({"GPUSERVE_OUTPUT_URL": "ftp://h/p/"}, "GPUSERVE_OUTPUT_URL='ftp://h/p/': has the scheme 'ftp'"),
        ({"GPUSERVE_OUTPUT_URL": "https://h:port/"}, "GPUSERVE_OUTPUT_URL='https://h:port/': is not a URL"),
        ({"GPUSERVE_OUTPUT_URL": "https:///p/"}, "GPUSERVE_OUTPUT_URL='https:///p/': has no host"),
        ({"GPUSERVE_OUTPUT_S3": "s3:///outputs"}, "GPUSERVE_OUTPUT_S3='s3:///outputs': names no bucket"),
        ({"GPUSERVE_OUTPUT_S3": "my-bucket"}, "GPUSERVE_OUTPUT_S3='my-bucket': has the scheme '(none)'"),
        ({"GPUSERVE_OUTPUT_S3": "s3://My_Bucket"}, "GPUSERVE_OUTPUT_S3='s3://My_Bucket': 'My_Bucket' is not a bucket"),
        (
            {"GPUSERVE_OUTPUT_S3": "s3://b-1", "BUCKET_ENDPOINT_URL": "minio:9000"},
            "BUCKET_ENDPOINT_URL='minio:9000': has the scheme 'minio'",
        ),
        (
            {"GPUSERVE_OUTPUT_S3": "s3://b-1", "AWS_ACCESS_KEY_ID": "AKIA"},
            "AWS_SECRET_ACCESS_KEY='(unset)': AWS_ACCESS_KEY_ID is set without it",
        ),
        (
            {"GPUSERVE_OUTPUT_S3": "s3://b-1", "GPUSERVE_S3_URL_SECONDS": "604801"},
            "GPUSERVE_S3_URL_SECONDS='604801': is not a presigned URL lifetime. Allowed: whole seconds from 1 to",
        ),
    ],
)
def test_a_wrong_setting_names_the_variable_value_allowed_and_fix(env: dict[str, str], expected: str) -> None:
    problems = [str(problem) for problem in check_destination(env)]
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected) and ". Allowed: " in problems[0] and ". Fix: " in problems[0]


def test_every_problem_is_raised_together_and_credentials_are_left_out() -> None:
    env = {
        "GPUSERVE_OUTPUT_URL": "ftp://user:hunter2@h/p/?token=hunter2",
        "GPUSERVE_OUTPUT_S3": "s3://b-1",
        "BUCKET_SECRET_ACCESS_KEY": "hunter2",
    }
    with pytest.raises(DestinationError) as raised:
        destination_from_env(env)
    assert isinstance(raised.value, ProblemsError) and len(raised.value.problems) == 3
    message = str(raised.value)
    assert "ftp://h/p/" in message and "BUCKET_ACCESS_KEY_ID='(unset)'" in message
    assert "hunter2" not in message


def test_missing_boto3_is_a_start_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "boto3" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    (problem,) = check_destination({"GPUSERVE_OUTPUT_S3": "s3://b-1"})
    assert "needs boto3" in str(problem) and "pip_install('boto3==" in str(problem)


def test_put_url_adds_one_slash_and_keeps_the_prefixs_query() -> None:
    assert HttpPut("https://h/up").url_for("n.png") == "https://h/up/n.png"
    assert HttpPut("https://h/up/").url_for("n.png") == "https://h/up/n.png"
    assert HttpPut("https://h/up/?sig=a%2Fb").url_for("n.png") == "https://h/up/n.png?sig=a%2Fb"


def test_s3_settings_take_ours_and_aws_first_then_runpods() -> None:
    runpod = {
        "BUCKET_ENDPOINT_URL": "https://nyc3.digitaloceanspaces.com",
        "BUCKET_ACCESS_KEY_ID": "rp-key",
        "BUCKET_SECRET_ACCESS_KEY": "rp-secret",
    }
    target = S3Bucket.from_env("s3://b-1/out/run/", runpod)
    assert (target.bucket, target.key_for("x.png")) == ("b-1", "out/run/x.png")
    assert target.endpoint_url == "https://nyc3.digitaloceanspaces.com" and target.region == "nyc3"
    assert target.credentials == ("rp-key", "rp-secret", None) and "rp-secret" not in repr(target)
    assert target.url_seconds == DEFAULT_URL_SECONDS == 604800

    ours = {
        **runpod,
        "GPUSERVE_S3_ENDPOINT_URL": "https://s3.us-west-2.amazonaws.com",
        "AWS_ACCESS_KEY_ID": "aws-key",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "AWS_SESSION_TOKEN": "aws-token",
        "GPUSERVE_S3_URL_SECONDS": "60",
    }
    target = S3Bucket.from_env("s3://b-1", ours)
    assert target.key_for("x.png") == "x.png"
    assert (target.endpoint_url, target.region) == ("https://s3.us-west-2.amazonaws.com", "us-west-2")
    assert target.credentials == ("aws-key", "aws-secret", "aws-token")
    assert target.url_seconds == 60


def test_uploaded_names_are_fresh_and_keep_only_a_plain_suffix(tmp_path: Path) -> None:
    names = [
        _fresh_name(tmp_path / "../../etc/Evil Name.PNG", "image/png"),
        _fresh_name(tmp_path / "no-suffix", "image/jpeg"),
        _fresh_name(tmp_path / "odd.p n g", "application/octet-stream"),
        _fresh_name(tmp_path / "odd.p n g", "application/octet-stream"),
    ]
    assert all(FRESH.match(name) for name in names), names
    assert [name[32:] for name in names] == [".png", ".jpg", "", ""]
    assert len(set(names)) == 4


def test_importing_outputs_leaves_boto3_and_httpx_unimported() -> None:
    code = "import sys, gpuserve.runtime.outputs; print(sorted(m for m in ('boto3', 'httpx') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

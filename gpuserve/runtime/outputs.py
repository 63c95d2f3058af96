"""Deliver predict's output files: a `data:` URI by default, or an upload answered with its URL.

The destination is read from the environment once, at container start (the host calls `check_destination` in setup,
so a wrong setting fails the start, not a request):
- nothing set: `data:<content-type>;base64,<bytes>`, the form cog answers with (standard base64, padded).
- `GPUSERVE_OUTPUT_URL=https://host/prefix/`: an HTTP PUT of each file, the way cog's `--upload-url` works.
- `GPUSERVE_OUTPUT_S3=s3://bucket/prefix`: an upload with boto3 to S3 or any S3-compatible store, answered with a
  presigned GET URL.
Uploaded files get a fresh name (a random hex name and the file's suffix): a name a client sent never becomes a path.
httpx and boto3 are imported on first use only.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import GpuserveError, Problem, ProblemsError
from ..files import OCTET_STREAM, File, guess_type, suffix_for

OUTPUT_URL = "GPUSERVE_OUTPUT_URL"
OUTPUT_S3 = "GPUSERVE_OUTPUT_S3"
S3_ENDPOINT_URL = "GPUSERVE_S3_ENDPOINT_URL"
S3_URL_SECONDS = "GPUSERVE_S3_URL_SECONDS"
# Where the endpoint may come from, first found wins: ours, boto3's own two, then RunPod's rp_upload convention.
ENDPOINT_VARIABLES = (S3_ENDPOINT_URL, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "BUCKET_ENDPOINT_URL")
# Credential pairs, first complete pair wins; with neither, boto3 looks further (profiles, instance roles).
KEY_PAIRS = (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ("BUCKET_ACCESS_KEY_ID", "BUCKET_SECRET_ACCESS_KEY"))
# RunPod's rp_upload presigns for 7 days, which is also the longest a SigV4 presigned URL may live.
DEFAULT_URL_SECONDS = 7 * 24 * 3600
UPLOAD_TIMEOUT_S = 25.0  # cog's own upload timeout; httpx applies it to each connect, read and write
ATTEMPTS = 2  # an upload is retried once
_RETRY_PAUSE_S = 0.5
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_MEDIA_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}(?:;{_TOKEN}={_TOKEN})*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class Destination(Protocol):
    """Where an output file goes; `deliver` answers with what the client gets for it."""

    def deliver(self, path: Path, content_type: str) -> str: ...


class OutputUploadFailed(GpuserveError):
    """An output file could not be uploaded (a failure that may pass is retried once first). Its URL carries no
    credentials and no query string."""

    def __init__(self, url: str, reason: str, hint: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(f"uploading an output file to {url} failed: {reason}. Fix: {hint}")


class DestinationError(ProblemsError):
    """The output destination settings cannot work; every problem is listed."""


@dataclass(frozen=True)
class DestinationProblem(Problem):
    """A Problem that prints as its rendered sentence (the host joins them with str())."""

    def __str__(self) -> str:
        return self.render()


def content_type_of(path: Path) -> str:
    """A File's own content type; else the one its suffix suggests; else application/octet-stream."""
    if isinstance(path, File):
        return path.content_type
    return guess_type(path.name)


def check_destination(env: Mapping[str, str] | None = None) -> list[DestinationProblem]:
    """Every problem with the output destination settings, for the host to report when the container starts."""
    env = os.environ if env is None else env
    url, s3 = env.get(OUTPUT_URL, "").strip(), env.get(OUTPUT_S3, "").strip()
    problems: list[DestinationProblem] = []
    if url and s3:
        problems.append(
            DestinationProblem(
                OUTPUT_URL + " and " + OUTPUT_S3,
                f"{_redact(url)} and {s3}",
                "both are set, and an output goes to one place",
                allowed="one of them, or neither (outputs come back as data: URIs)",
                hint="unset the one you do not mean to use",
            )
        )
    if url:
        problems += _check_http_url(OUTPUT_URL, url, "https://files.example.com/outputs/")
    if s3:
        problems += _check_s3(env, s3)
    return problems


def destination_from_env(env: Mapping[str, str] | None = None) -> Destination:
    """The destination the environment names. Raises DestinationError naming each variable that cannot work."""
    env = os.environ if env is None else env
    problems = check_destination(env)
    if problems:
        raise DestinationError("output destination", list(problems))
    url, s3 = env.get(OUTPUT_URL, "").strip(), env.get(OUTPUT_S3, "").strip()
    if url:
        return HttpPut(url)
    if s3:
        return S3Bucket.from_env(s3, env)
    return DataUri()


# the three destinations -------------------------------------------------------------------
class DataUri:
    """The file inline, as cog answers without an upload URL: `data:image/png;base64,iVBORw0...`."""

    def deliver(self, path: Path, content_type: str) -> str:
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        return f"data:{_media_type(content_type)};base64,{encoded}"


class HttpPut:
    """PUT each file to the prefix plus a fresh name, as cog's `--upload-url` does.

    Like cog: the Content-Type header is the file's type, redirects are followed, any 2xx is success, and the
    answer is the response's Location header (resolved against the upload URL), else the URL that answered, with
    its query (signing parameters) and credentials removed. Unlike cog, the name goes on the URL's path and a
    query in the prefix (a token) is kept on the PUT; cog appends the name after the query. A transport error,
    408, 429 or 5xx is retried once; another status fails at once, since sending it again changes nothing.
    """

    def __init__(self, prefix: str) -> None:
        parts = urllib.parse.urlsplit(prefix)
        self._parts = parts._replace(path=parts.path if parts.path.endswith("/") else parts.path + "/")
        self._client: Any = None
        self._lock = threading.Lock()

    def url_for(self, name: str) -> str:
        """The URL a file of this fresh name is PUT to."""
        return urllib.parse.urlunsplit(self._parts._replace(path=self._parts.path + urllib.parse.quote(name)))

    def deliver(self, path: Path, content_type: str) -> str:
        import httpx

        url = self.url_for(_fresh_name(path, content_type))
        headers = {"Content-Type": _media_type(content_type)}
        data = path.read_bytes()
        tries = 0
        while True:
            tries += 1
            try:
                response = self._http().put(url, content=data, headers=headers)
            except httpx.HTTPError as exc:
                status, reason = None, f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    answered = urllib.parse.urljoin(str(response.url), response.headers.get("location") or "")
                    return _redact(answered)
                status, reason = response.status_code, f"the PUT answered {response.status_code}"
                reason = f"{reason} {response.reason_phrase}".rstrip()
            if tries >= ATTEMPTS or (status is not None and status < 500 and status not in (408, 429)):
                break
            time.sleep(_RETRY_PAUSE_S)
        raise OutputUploadFailed(
            _redact(url),
            f"{reason} ({'tried twice' if tries > 1 else 'not retried: sending it again would not change it'})",
            f"check that {OUTPUT_URL} accepts a PUT from this container (its address, credentials and space)",
            status=status,
        )

    def _http(self) -> Any:
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(timeout=UPLOAD_TIMEOUT_S, follow_redirects=True)
            return self._client


@dataclass(frozen=True)
class S3Bucket:
    """Upload with boto3 to `bucket/prefix/<fresh name>` and answer with a presigned GET URL.

    A presigned URL, as RunPod's rp_upload answers, because buckets are private by default and a plain object URL
    would answer 403; it lives `GPUSERVE_S3_URL_SECONDS` (default 7 days, RunPod's, the most SigV4 allows), or less
    when the credentials are temporary ones that expire first. Region: AWS_REGION or AWS_DEFAULT_REGION, else read
    from the endpoint's host as rp_upload does. boto3 retries once on its own (standard mode, 2 attempts).
    """

    bucket: str
    prefix: str
    endpoint_url: str | None
    credentials: tuple[str, str, str | None] | None = field(repr=False)  # secrets: never in a log line
    region: str | None
    url_seconds: int

    @classmethod
    def from_env(cls, target: str, env: Mapping[str, str]) -> S3Bucket:
        parts = urllib.parse.urlsplit(target)
        endpoint = next((env[name].strip() for name in ENDPOINT_VARIABLES if env.get(name, "").strip()), None)
        credentials = None
        for key_name, secret_name in KEY_PAIRS:
            if env.get(key_name) and env.get(secret_name):
                token = env.get("AWS_SESSION_TOKEN") if key_name.startswith("AWS_") else None
                credentials = (env[key_name], env[secret_name], token or None)
                break
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or _region_of(endpoint)
        seconds = int(env.get(S3_URL_SECONDS, "").strip() or DEFAULT_URL_SECONDS)
        return cls(parts.netloc, parts.path.strip("/"), endpoint, credentials, region, seconds)

    def key_for(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def deliver(self, path: Path, content_type: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key_for(_fresh_name(path, content_type))
        where = f"s3://{self.bucket}/{key}" + (f" at {_redact(self.endpoint_url)}" if self.endpoint_url else "")
        client = _s3_client(self)
        try:
            with path.open("rb") as body:  # one PUT, streamed from the file, as rp_upload's upload_image does
                client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=_media_type(content_type))
            url = client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.url_seconds
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            reason = f"{error.get('Code', 'error')} ({status}): {error.get('Message', '')}".rstrip(": ")
            raise OutputUploadFailed(where, reason, _S3_HINT, status=status) from None
        except BotoCoreError as exc:  # no answer: the endpoint unreachable, no credentials found
            raise OutputUploadFailed(where, f"{type(exc).__name__}: {exc}", _S3_HINT) from None
        return str(url)


_S3_HINT = (
    f"check that the bucket in {OUTPUT_S3} exists at the endpoint, and that the credentials "
    "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or BUCKET_ACCESS_KEY_ID/BUCKET_SECRET_ACCESS_KEY) may put objects there"
)
_clients: dict[S3Bucket, Any] = {}
_clients_lock = threading.Lock()


def _s3_client(bucket: S3Bucket) -> Any:
    """One boto3 client per destination (clients are thread-safe; making one takes a while)."""
    with _clients_lock:
        if bucket not in _clients:
            import boto3
            from botocore.config import Config

            key, secret, token = bucket.credentials or (None, None, None)
            _clients[bucket] = boto3.session.Session().client(
                "s3",
                endpoint_url=bucket.endpoint_url,
                aws_access_key_id=key,
                aws_secret_access_key=secret,
                aws_session_token=token,
                region_name=bucket.region,
                config=Config(
                    signature_version="s3v4",
                    retries={"max_attempts": ATTEMPTS, "mode": "standard"},
                    connect_timeout=UPLOAD_TIMEOUT_S,
                    read_timeout=UPLOAD_TIMEOUT_S,
                ),
            )
        return _clients[bucket]


# checks and helpers ---------------------------------------------------------------------------
def _check_http_url(name: str, value: str, example: str) -> list[DestinationProblem]:
    try:
        parts = urllib.parse.urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        reason = f"is not a URL ({exc})"
    else:
        if parts.scheme not in ("http", "https"):
            reason = f"has the scheme {parts.scheme or '(none)'!r}"
        elif not parts.hostname:
            reason = "has no host"
        elif parts.fragment:
            reason = "has a #fragment, which is never sent"
        else:
            return []
    return [
        DestinationProblem(
            name, _redact(value), reason, allowed="an http:// or https:// URL", hint=f"e.g. {name}={example}"
        )
    ]


def _check_s3(env: Mapping[str, str], value: str) -> list[DestinationProblem]:
    problems: list[DestinationProblem] = []

    def problem(name: str, given: str, message: str, allowed: str, hint: str) -> None:
        problems.append(DestinationProblem(name, given, message, allowed=allowed, hint=hint))

    parts = urllib.parse.urlsplit(value)
    form, example = "s3://BUCKET or s3://BUCKET/PREFIX", f"{OUTPUT_S3}=s3://my-bucket/outputs"
    if parts.scheme != "s3":
        problem(OUTPUT_S3, value, f"has the scheme {parts.scheme or '(none)'!r}", form, example)
    elif not parts.netloc:
        problem(OUTPUT_S3, value, "names no bucket", form, example)
    elif not _BUCKET.match(parts.netloc) or ".." in parts.netloc:
        allowed = "3 to 63 lowercase letters, digits, dots and hyphens; a letter or digit first and last"
        problem(OUTPUT_S3, value, f"{parts.netloc!r} is not a bucket name", allowed, example)
    elif parts.query or parts.fragment:
        problem(OUTPUT_S3, value, "has a ?query or #fragment", form, example)
    for name in ENDPOINT_VARIABLES:
        if env.get(name, "").strip():
            problems += _check_http_url(name, env[name].strip(), "https://s3.eu-central-1.amazonaws.com")
    for pair in KEY_PAIRS:
        given = [name for name in pair if env.get(name)]
        if len(given) == 1:
            missing = pair[1] if given[0] == pair[0] else pair[0]
            problem(missing, "(unset)", f"{given[0]} is set without it", "both or neither", f"set {missing} too")
    seconds = env.get(S3_URL_SECONDS, "").strip()
    if seconds and (not seconds.isdigit() or not 1 <= int(seconds) <= DEFAULT_URL_SECONDS):
        allowed = f"whole seconds from 1 to {DEFAULT_URL_SECONDS} (7 days)"
        problem(S3_URL_SECONDS, seconds, "is not a presigned URL lifetime", allowed, f"e.g. {S3_URL_SECONDS}=86400")
    if importlib.util.find_spec("boto3") is None:
        hint = "add a pinned boto3 to the model's image: gpuserve.Image().pip_install('boto3==<version>')"
        problem(OUTPUT_S3, value, "needs boto3, which this environment lacks", "an image that has boto3", hint)
    return problems


def _media_type(content_type: str) -> str:
    """The content type as a header and a data: URI take it (no spaces). Raises ValueError for a malformed one."""
    compact = re.sub(r"\s*;\s*", ";", content_type.strip()) or OCTET_STREAM
    if not _MEDIA_TYPE.match(compact):
        raise ValueError(
            f"content_type={content_type!r} is not a media type: give type/subtype such as 'image/png' "
            "(parameters as ';name=value'), e.g. gpuserve.File.from_bytes(data, content_type='image/png')"
        )
    return compact


def _fresh_name(path: Path, content_type: str) -> str:
    """A random name with the file's suffix (or the content type's): never a name a client chose."""
    suffix = path.suffix.lower()
    if not (suffix[1:].isalnum() and suffix.isascii() and len(suffix) <= 10):
        suffix = suffix_for(content_type)
    return uuid.uuid4().hex + suffix


def _redact(url: str) -> str:
    """The URL without user:password@ and without its query (tokens, signatures)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return urllib.parse.urlunsplit(parts._replace(netloc=host, query="", fragment=""))
    except ValueError:
        return "(a URL that does not parse)"


def _region_of(endpoint: str | None) -> str | None:
    """The region in an endpoint's host, as RunPod's rp_upload reads it (AWS and Backblaze, DigitalOcean)."""
    host = urllib.parse.urlsplit(endpoint or "").hostname or ""
    if host.endswith(".digitaloceanspaces.com"):
        return host.split(".")[-3]
    labels = host.split(".")
    if "s3" in labels[:-1]:
        candidate = labels[labels.index("s3") + 1]
        return None if candidate in ("amazonaws", "dualstack") else candidate
    return None

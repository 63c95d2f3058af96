"""Fetch predict's file inputs into temporary files, under their limits, and remove them once answered.

A client's file arrives as an http(s) URL, a `data:` URI, base64 text or bytes (gpuserve/files.py records which);
this module turns each into a local file before predict runs. URLs are fetched with httpx from public addresses
only: the host's addresses are checked and the connection goes to the checked address (no second DNS answer),
each redirect is checked again, and `GPUSERVE_ALLOW_URLS` (hosts or networks, comma-separated) opens private
ones for tests and internal stores. Sizes past the limit answer 413, types not allowed 415, the rest 422.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import os
import shutil
import socket
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..files import DEFAULT_MAX_BYTES, OCTET_STREAM, File, FileLimits, guess_type, holds_file
from .inputs import InvalidInput

ALLOW_URLS = "GPUSERVE_ALLOW_URLS"
DOWNLOAD_TIMEOUT = "GPUSERVE_DOWNLOAD_TIMEOUT"
MAX_FILE_BYTES = "GPUSERVE_MAX_FILE_BYTES"
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FileRefused(InvalidInput):
    """A file input the limits refuse: 413 too large, 415 a type not allowed, 422 anything else about it."""

    def __init__(self, loc: tuple[str | int, ...], status: int, kind: str, message: str) -> None:
        super().__init__([{"loc": ["input", *loc], "msg": message, "type": kind}])
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class FetchPolicy:
    """What URL inputs may reach, how long a download may take, and the size when an input sets none."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()
    timeout: float = 60.0
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FetchPolicy:
        env = os.environ if env is None else env
        hosts: set[str] = set()
        networks: list[Network] = []
        for item in (part.strip() for part in env.get(ALLOW_URLS, "").split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower())
        return cls(
            hosts=frozenset(hosts),
            networks=tuple(networks),
            timeout=_positive(env, DOWNLOAD_TIMEOUT, 60.0),
            max_bytes=int(_positive(env, MAX_FILE_BYTES, DEFAULT_MAX_BYTES)),
        )

    def allows(self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if host.lower() in self.hosts:
            return True
        if address.is_global and not address.is_multicast:
            return True
        return any(address in network for network in self.networks)


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise ValueError(f"{name}={text!r} is not a positive number; unset it or set e.g. {name}={default:g}")
    return value


# which inputs hold files ----------------------------------------------------------------
@functools.cache
def file_fields(model: type[BaseModel]) -> dict[str, FileLimits]:
    """The input fields that hold a File anywhere in their type, with the limits their annotation sets."""
    found: dict[str, FileLimits] = {}
    for name, field in model.model_fields.items():
        if holds_file(field.annotation):
            limits = next((m for m in field.metadata if isinstance(m, FileLimits)), FileLimits())
            found[name] = limits
    return found


def _files_in(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[File, tuple[str | int, ...]]]:
    if isinstance(value, File):
        yield value, loc
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _files_in(getattr(value, name), (*loc, name))
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from _files_in(item, (*loc, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _files_in(item, (*loc, key))


# fetching --------------------------------------------------------------------------------
def fetch_inputs(value: BaseModel, policy: FetchPolicy) -> list[File]:
    """Fetch every file input of a validated value into its path. Returns the files to discard once answered.

    Raises FileRefused (after removing what it fetched) for the first file the limits refuse.
    """
    fields = file_fields(type(value))
    if not fields:
        return []
    made: list[File] = []
    try:
        for name, limits in fields.items():
            for file, loc in _files_in(getattr(value, name), (name,)):
                _fetch_one(file, loc, limits, policy)
                if file.owned:
                    made.append(file)
    except BaseException:
        discard(made)
        raise
    return made


def discard(files: list[File] | list[Path]) -> None:
    """Remove the temporary files gpuserve made for one request (each lives in a directory of its own)."""
    for file in files:
        if getattr(file, "owned", False):
            shutil.rmtree(file.parent, ignore_errors=True)


def _fetch_one(file: File, loc: tuple[str | int, ...], limits: FileLimits, policy: FetchPolicy) -> None:
    max_bytes = limits.max_bytes or policy.max_bytes
    source = file.source
    if source is None:  # a file the platform fetched itself (cog): checked where it lies
        if not file.is_file():
            raise FileRefused(loc, 422, "FileMissing", "the platform's file is not there")
        _check_type(file.content_type, limits, loc)
        _check_size(file.stat().st_size, max_bytes, loc)
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, bytes):
        file.content_type = sniff(source) if file.content_type == OCTET_STREAM else file.content_type
        _check_type(file.content_type, limits, loc)
        _check_size(len(source), max_bytes, loc)
        file.write_bytes(source)
    elif source.startswith(("http://", "https://", "HTTP://", "HTTPS://")):
        _download(file, source, loc, limits, max_bytes, policy)
    elif source[:5].lower() == "data:":
        _check_type(file.content_type, limits, loc)
        file.write_bytes(_data_uri_bytes(source, max_bytes, loc))
    else:
        data = _base64_bytes(source, max_bytes, loc)
        file.content_type = sniff(data)
        _check_type(file.content_type, limits, loc)
        file.write_bytes(data)
    file.source = None


# Bytes with no media type (base64 text, a Python caller's bytes) are typed by how the common formats begin.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF8", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"%PDF-", 0, "application/pdf"),
    (b"WAVE", 8, "audio/wav"),
    (b"ID3", 0, "audio/mpeg"),
    (b"fLaC", 0, "audio/flac"),
    (b"OggS", 0, "audio/ogg"),
    (b"ftyp", 4, "video/mp4"),
    (b"\x1aE\xdf\xa3", 0, "video/webm"),
    (b"PK\x03\x04", 0, "application/zip"),
)


def sniff(data: bytes) -> str:
    """The media type the first bytes show for common image, audio, video and document formats."""
    for signature, offset, content_type in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return content_type
    return OCTET_STREAM


def _check_size(size: int, max_bytes: int, loc: tuple[str | int, ...]) -> None:
    if size > max_bytes:
        raise FileRefused(
            loc, 413, "FileTooLarge", f"the file is over {max_bytes} bytes (FileLimits.max_bytes); send a smaller one"
        )


def _check_type(content_type: str, limits: FileLimits, loc: tuple[str | int, ...]) -> None:
    if not limits.allows(content_type):
        allowed = ", ".join(limits.content_types)
        hint = " (say the type: a data: URI with its media type, or a URL whose server sends it)"
        raise FileRefused(
            loc,
            415,
            "UnsupportedFileType",
            f"the file's type is {content_type}; allowed: {allowed}" + (hint if content_type == OCTET_STREAM else ""),
        )


def _decoded_size(text: str) -> int:
    return len(text) * 3 // 4


def _base64_bytes(text: str, max_bytes: int, loc: tuple[str | int, ...]) -> bytes:
    compact = "".join(text.split())
    _check_size(_decoded_size(compact) - 2, max_bytes, loc)
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        try:
            data = base64.b64decode(compact, altchars=b"-_", validate=True)  # the URL-safe alphabet
        except (binascii.Error, ValueError):
            raise FileRefused(
                loc, 422, "InvalidFile", "is neither an http(s) URL, a data: URI nor base64 text"
            ) from None
    _check_size(len(data), max_bytes, loc)
    return data


def _data_uri_bytes(text: str, max_bytes: int, loc: tuple[str | int, ...]) -> bytes:
    head, comma, payload = text[5:].partition(",")
    if not comma:
        raise FileRefused(loc, 422, "InvalidFile", "the data: URI has no comma: data:<type>;base64,<data>")
    if head.lower().endswith(";base64"):
        return _base64_bytes(payload, max_bytes, loc)
    data = urllib.parse.unquote_to_bytes(payload)
    _check_size(len(data), max_bytes, loc)
    return data


def _download(
    file: File, url: str, loc: tuple[str | int, ...], limits: FileLimits, max_bytes: int, policy: FetchPolicy
) -> None:
    import httpx  # only models with file inputs pay for it

    deadline = time.monotonic() + policy.timeout
    timeout = httpx.Timeout(policy.timeout)
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            target, headers, extensions = _pinned(url, loc, policy)
            try:
                with client.stream("GET", target, headers=headers, extensions=extensions) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urllib.parse.urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise FileRefused(
                            loc, 422, "FileFetchFailed", f"{_shown(url)} answered HTTP {response.status_code}"
                        )
                    given = response.headers.get("content-type", "").split(";", 1)[0].strip()
                    if given and given != OCTET_STREAM:
                        file.content_type = given
                    elif file.content_type == OCTET_STREAM:
                        file.content_type = guess_type(urllib.parse.urlsplit(url).path)
                    _check_type(file.content_type, limits, loc)
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit():
                        _check_size(int(declared), max_bytes, loc)
                    size = 0
                    with file.open("wb") as out:
                        for chunk in response.iter_bytes(_CHUNK):
                            size += len(chunk)
                            _check_size(size, max_bytes, loc)
                            if time.monotonic() > deadline:
                                raise httpx.ReadTimeout("the download took too long")
                            out.write(chunk)
                    return
            except httpx.TimeoutException:
                raise FileRefused(
                    loc, 422, "FileFetchFailed", f"{_shown(url)} did not arrive within {policy.timeout:g} s"
                ) from None
            except httpx.HTTPError as exc:
                raise FileRefused(loc, 422, "FileFetchFailed", f"{_shown(url)} could not be fetched: {exc}") from None
    raise FileRefused(loc, 422, "FileFetchFailed", f"{_shown(url)} redirected more than {MAX_REDIRECTS} times")


def _pinned(url: str, loc: tuple[str | int, ...], policy: FetchPolicy) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL with its host replaced by a checked address, the Host header and the TLS name to keep."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FileRefused(loc, 422, "InvalidFile", f"{_shown(url)} is not an http(s) URL")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise FileRefused(loc, 422, "FileFetchFailed", f"{_shown(url)}: the host does not resolve ({exc})") from None
    addresses = [_unmapped(ipaddress.ip_address(info[4][0])) for info in infos]
    refused = [str(a) for a in addresses if not policy.allows(host, a)]
    if refused or not addresses:
        raise FileRefused(
            loc,
            422,
            "URLNotAllowed",
            f"{_shown(url)} resolves to a private or local address ({', '.join(refused)}); URL inputs reach public "
            f"addresses only, unless {ALLOW_URLS} lists the host or network (e.g. {ALLOW_URLS}={host})",
        )
    address = addresses[0]
    shown_address = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{shown_address}:{port}"
    target = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    return target, {"Host": host_header}, {"sni_hostname": host}


def _unmapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """::ffff:127.0.0.1 is 127.0.0.1: check the IPv4 address an IPv4-mapped one reaches."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _shown(url: str) -> str:
    """A URL as errors show it: no credentials, no query (signed URLs carry secrets there)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))

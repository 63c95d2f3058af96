"""File inputs and outputs: a digest of what arrived, and a file made from it."""

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel

import gpuserve

Png = Annotated[gpuserve.File, gpuserve.FileLimits(max_bytes=4096, content_types=("image/png", "text/*"))]


class Digest(BaseModel):
    sha256: str
    size: int
    content_type: str
    suffix: str
    inside_files_dir: bool


@gpuserve.model(name="file-digest")
class FileDigest:
    """What predict saw of its file: the bytes' digest, and that it is a local file gpuserve fetched."""

    def predict(self, data: Png, note: str = "") -> Digest:
        seen.append(Path(data))
        return Digest(
            sha256=hashlib.sha256(data.read_bytes()).hexdigest(),
            size=data.stat().st_size,
            content_type=data.content_type,
            suffix=data.suffix,
            inside_files_dir="gpuserve-files" in str(data) or "files" in str(data.parent.parent),
        )


@gpuserve.model(name="file-reverse")
class FileReverse:
    """A file in, its bytes reversed out (as PNG-typed bytes), `times` over; and a list of them when streamed."""

    def predict(self, data: Png, times: int = 1) -> gpuserve.File:
        return gpuserve.File.from_bytes(data.read_bytes()[::-1] * times, content_type="image/png")


seen: list[Path] = []


@gpuserve.model(name="file-frames")
class FileFrames:
    """A stream of files: `count` small PNG-typed files, each its index repeated."""

    def predict(self, count: int = 2) -> Iterator[gpuserve.File]:
        for index in range(count):
            yield gpuserve.File.from_bytes(bytes([index]) * 10, content_type="image/png")

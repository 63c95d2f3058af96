"""gpuserve.File: a file in or out of predict, the same on every target.

Inside predict a File is a local path (a `pathlib.Path`). Clients never name a path: they send an `https://` URL,
a `data:` URI, base64, or (on the local and Docker servers) a multipart upload, and the runtime fetches it into a
temporary file before predict runs. Validation only records where the file comes from; nothing is read or fetched
until the runtime resolves it (gpuserve/runtime/files.py), under the limits of its annotation.
"""

from __future__ import annotations

import mimetypes
import os
import pathlib
import tempfile
import typing
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

OCTET_STREAM = "application/octet-stream"
# The pydantic validation context key that says who made the value (see `File` for the three readings).
CONTEXT_KEY = "gpuserve_files"
TRUSTED_PATHS = "trusted-paths"  # a platform fetched the file itself (cog's Path inputs): local paths are read
OUTPUT = "output"  # predict's return value: a Path or bytes becomes a File to deliver
DEFAULT_MAX_BYTES = 100 * 1024 * 1024


def files_root() -> pathlib.Path:
    """Where fetched inputs and File.from_bytes outputs live until the request is answered."""
    return pathlib.Path(os.environ.get("GPUSERVE_FILES_DIR") or pathlib.Path(tempfile.gettempdir()) / "gpuserve-files")


def suffix_for(content_type: str) -> str:
    """A file suffix for a content type (".png"), or "" when there is no usual one."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("", OCTET_STREAM):
        return ""
    return mimetypes.guess_extension(media, strict=False) or ""


def guess_type(name: str) -> str:
    """The content type a file name's suffix suggests, else application/octet-stream."""
    return mimetypes.guess_type(name, strict=False)[0] or OCTET_STREAM


class File(pathlib.PosixPath):  # containers are Linux; Path itself cannot be subclassed before Python 3.12
    """A local file handed to or returned by predict.

    In predict's parameters it is a file the runtime fetched for this request (removed after predict returns);
    predict returns a Path, or `File.from_bytes(...)`, and the client gets a `data:` URI or an uploaded file's URL.
    Validation reads a value three ways, by the validation context: a client's value (a URL, `data:` URI or
    base64 string, or bytes from a Python caller) is only recorded as this file's `source`, never read as a path; a
    platform's own fetched file (cog's `Path`) is used where it lies; and an output Path or bytes becomes a File.
    """

    content_type: str = OCTET_STREAM
    source: str | bytes | None = None  # where the runtime fetches it from; None once it is local
    owned: bool = False  # made by gpuserve under files_root(): removed once the request is answered

    @classmethod
    def from_bytes(cls, data: bytes, content_type: str = OCTET_STREAM, name: str | None = None) -> File:
        """Write `data` to a new temporary file (removed once answered). `name` only lends its suffix."""
        suffix = pathlib.PurePath(name).suffix if name else suffix_for(content_type)
        made = cls._fresh("output", suffix, content_type)
        made.parent.mkdir(parents=True, exist_ok=True)
        made.write_bytes(data)
        return made

    @classmethod
    def of(cls, path: pathlib.PurePath, content_type: str | None = None) -> File:
        """A File for a path that exists locally, its type given or guessed from its suffix."""
        if isinstance(path, File) and content_type is None:
            return path
        made = cls(path)
        made.content_type = content_type or getattr(path, "content_type", None) or guess_type(path.name)
        return made

    @classmethod
    def pending(cls, source: str | bytes, suffix: str = "", content_type: str = OCTET_STREAM) -> File:
        """A File the runtime will fetch from `source` into a fresh path before predict runs."""
        made = cls._fresh("input", suffix, content_type)
        made.source = source
        return made

    @classmethod
    def _fresh(cls, stem: str, suffix: str, content_type: str) -> File:
        safe = suffix if suffix[1:].isalnum() and len(suffix) <= 10 else ""
        made = cls(files_root() / uuid.uuid4().hex / f"{stem}{safe.lower()}")
        made.content_type = content_type
        made.owned = True
        return made

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, _handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(
            _validate,
            serialization=core_schema.plain_serializer_function_ser_schema(_serialize, info_arg=True),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "uri"}


@dataclass(frozen=True)
class FileLimits:
    """Per-parameter limits: `Annotated[gpuserve.File, gpuserve.FileLimits(max_bytes=..., content_types=(...))]`.

    content_types are media types ("image/png") or families ("image/*"); empty allows any type.
    """

    max_bytes: int | None = None
    content_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.max_bytes is not None and (not isinstance(self.max_bytes, int) or self.max_bytes < 1):
            problems.append(f"max_bytes={self.max_bytes!r}: allowed is a whole number of bytes from 1, or None")
        for item in self.content_types:
            if not isinstance(item, str) or item.count("/") != 1:
                problems.append(f"content_types item {item!r}: allowed is a media type like 'image/png' or 'image/*'")
        if isinstance(self.content_types, str):
            problems.append(f"content_types={self.content_types!r}: give a tuple, e.g. ('image/png', 'image/jpeg')")
        if problems:
            raise ValueError("FileLimits: " + "; ".join(problems))

    def allows(self, content_type: str) -> bool:
        if not self.content_types:
            return True
        media = content_type.split(";", 1)[0].strip().lower()
        family = media.split("/", 1)[0] + "/*"
        return any(allowed.lower() in (media, family, "*/*") for allowed in self.content_types)


def _validate(value: Any, info: core_schema.ValidationInfo) -> File:
    reading = (info.context or {}).get(CONTEXT_KEY) if isinstance(info.context, dict) else None
    if reading == OUTPUT:
        if isinstance(value, bytes):
            return File.from_bytes(value)
        if isinstance(value, pathlib.PurePath):
            return File.of(value)
        raise PydanticCustomError(
            "file_output",
            "return a pathlib.Path or gpuserve.File.from_bytes(data, content_type=...), not {kind}",
            {"kind": type(value).__name__},
        )
    if isinstance(value, pathlib.PurePath):
        if reading == TRUSTED_PATHS:
            return File.of(value)
        raise PydanticCustomError(
            "file_source", "a path on the server is not an input; send an https:// URL, a data: URI or the file's bytes"
        )
    if isinstance(value, bytes | bytearray):
        return File.pending(bytes(value))
    if isinstance(value, str):
        return _pending_from_text(value)
    raise PydanticCustomError(
        "file_source",
        "send a file as an https:// URL, a data: URI or base64 text, not {kind}",
        {"kind": type(value).__name__},
    )


def _pending_from_text(text: str) -> File:
    scheme = text.split(":", 1)[0].lower() if ":" in text[:12] else ""
    if scheme in ("http", "https"):
        return File.pending(text, suffix=pathlib.PurePosixPath(text.split("?", 1)[0].split("#", 1)[0]).suffix)
    if scheme == "data":
        media = text[5:].split(",", 1)[0].split(";", 1)[0] or "text/plain"
        return File.pending(text, suffix=suffix_for(media), content_type=media)
    if scheme or text.startswith(("/", ".", "~")):
        raise PydanticCustomError(
            "file_source",
            "{given} is not a file this server fetches: send an https:// URL, a data: URI "
            "(data:image/png;base64,...) or base64 text; local paths and file:// are never read",
            {"given": repr(text[:60])},
        )
    return File.pending(text)  # base64 text, decoded (and checked) when fetched


def _serialize(value: Any, info: core_schema.SerializationInfo) -> Any:
    deliver = (info.context or {}).get(CONTEXT_KEY) if isinstance(info.context, dict) else None
    if callable(deliver):
        return deliver(value if isinstance(value, File) else File.of(value))
    if info.mode_is_json():
        raise TypeError("a File output is delivered by the gpuserve runtime (as a data: URI or an uploaded URL)")
    return value


def holds_file(annotation: Any) -> bool:
    """Whether a type has a File anywhere in it (a field, a list's item, a nested model's field)."""
    return _holds_file(annotation, set())


def _holds_file(annotation: Any, seen: set[int]) -> bool:
    if annotation is None or id(annotation) in seen:
        return False
    seen.add(id(annotation))
    if isinstance(annotation, type):
        if issubclass(annotation, File):
            return True
        if issubclass(annotation, BaseModel):
            return any(_holds_file(f.annotation, seen) for f in annotation.model_fields.values())
        return False
    return any(_holds_file(arg, seen) for arg in typing.get_args(annotation))

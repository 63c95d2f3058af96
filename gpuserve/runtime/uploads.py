"""Multipart uploads to /predict on the local and Docker servers: `curl -F image=@cat.png -F radius=2 .../predict`.

Each form field is one input: a file part becomes a `data:` URI and every other part is read as its schema says
(text where the input is a string, JSON otherwise), then the input is validated exactly as a JSON body is.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from ..files import OCTET_STREAM, guess_type
from ..signature import resolve_ref

MAX_FIELDS = 1000
MAX_TEXT_PART_BYTES = 1024 * 1024


class BadUpload(ValueError):
    """The multipart body cannot be read."""


def is_multipart(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"


async def multipart_as_json(request: Request, input_model: type[BaseModel]) -> bytes:
    """The JSON body `{"input": {...}}` a multipart upload stands for. Raises BadUpload."""
    schema = input_model.model_json_schema()
    properties: dict[str, Any] = schema.get("properties", {})
    defs = schema.get("$defs", {})
    try:
        form = await request.form(max_files=MAX_FIELDS, max_fields=MAX_FIELDS, max_part_size=MAX_TEXT_PART_BYTES)
    except MultiPartException as exc:
        raise BadUpload(str(exc)) from None
    given: dict[str, Any] = {}
    try:
        for name, item in form.multi_items():
            field = resolve_ref(properties.get(name, {}), defs)
            value = await _data_uri(item) if isinstance(item, UploadFile) else _text_value(str(item), field)
            if field.get("type") == "array":
                given.setdefault(name, []).append(value)
            else:
                given[name] = value
    finally:
        await form.close()
    return json.dumps({"input": given}).encode()


async def _data_uri(upload: UploadFile) -> str:
    data = await upload.read()
    content_type = (upload.content_type or "").split(";", 1)[0].strip() or OCTET_STREAM
    if content_type == OCTET_STREAM and upload.filename:
        content_type = guess_type(upload.filename)  # the name lends its type only; it is never a path
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def _text_value(text: str, field: dict[str, Any]) -> Any:
    """A text part as its schema reads: strings stay text; numbers, booleans, objects and lists are JSON."""
    if field.get("type") == "string" or ("type" not in field and "anyOf" not in field):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text  # validation names the field and what it should be

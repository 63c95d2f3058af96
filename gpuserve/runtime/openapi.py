"""What the server's OpenAPI says of /predict: the request body it validates itself, and every status it answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from .answers import ErrorResponse

_REF = "#/components/schemas/{model}"


class ValidationDetail(BaseModel):
    loc: list[str | int] = Field(description='where the value is, e.g. ["body", "input", "prompt"]')
    msg: str
    type: str


class InvalidInputResponse(ErrorResponse):
    detail: list[ValidationDetail] = Field(description="one entry per field that broke the input schema")


def predict_responses(*, auth: bool) -> dict[int | str, dict[str, Any]]:
    """Every status POST /predict can answer besides 200, each with the error body it sends."""
    sse = {"schema": {"type": "string", "description": "one `data:` event per chunk, then `event: done`"}}
    error = {"model": ErrorResponse}
    responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {"text/event-stream": sse}},
        400: error | {"description": "the body is not JSON in UTF-8"},
        408: error | {"description": "the body did not arrive within limits.read_timeout"},
        413: error | {"description": "the body is over limits.max_body_bytes, or a file input over its max_bytes"},
        415: error
        | {"description": "the body is not JSON (or multipart, for file inputs), or a file's type is not allowed"},
        431: error | {"description": "the headers are over limits.max_header_bytes"},
        422: {"model": InvalidInputResponse, "description": "the input breaks the schema; `detail` names each field"},
        500: error | {"description": "predict raised"},
        503: error | {"description": "not ready, draining, or the queue is full (Retry-After says when to retry)"},
        504: error | {"description": "predict ran past the model's timeout"},
    }
    if auth:
        responses[401] = error | {"description": "no valid bearer token (GPUSERVE_AUTH_TOKENS)"}
    return responses


def with_request_schema(
    app: FastAPI, request_model: type[BaseModel], *, auth: bool, uploads: list[str] | None = None
) -> Callable[[], dict[str, Any]]:
    """app.openapi, with the body /predict parses itself (strictly) documented as its request body.

    uploads: the inputs that are files; /predict then also takes multipart/form-data, those fields as binary
    (so /docs shows a file picker).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        body = request_model.model_json_schema(ref_template=_REF)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(body.pop("$defs", {}))
        components[request_model.__name__] = body
        operation = schema["paths"]["/predict"]["post"]
        content: dict[str, Any] = {"application/json": {"schema": {"$ref": _REF.format(model=request_model.__name__)}}}
        if uploads:
            content["multipart/form-data"] = {"schema": _form_schema(components, request_model, uploads)}
        operation["requestBody"] = {"required": True, "content": content}
        if auth:
            components_root = schema["components"]
            components_root["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            for path, item in schema["paths"].items():
                for operation in item.values():
                    operation["security"] = [] if path == "/health" else [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    return openapi


def _form_schema(components: dict[str, Any], request_model: type[BaseModel], uploads: list[str]) -> dict[str, Any]:
    """The input's own schema, one form field per input, its files as binary parts."""
    input_ref = components[request_model.__name__]["properties"]["input"]
    name = input_ref.get("$ref", "").rsplit("/", 1)[-1]
    form: dict[str, Any] = json.loads(json.dumps(components.get(name, {})))
    for field in uploads:
        schema = form.get("properties", {}).get(field)
        if schema is not None:
            _as_binary(schema)
    form["title"] = f"{form.get('title', 'Input')} (multipart)"
    return form


def _as_binary(schema: Any) -> None:
    """Every `format: uri` file in a field's schema becomes `format: binary` (an upload)."""
    if isinstance(schema, dict):
        if schema.get("format") == "uri":
            schema["format"] = "binary"
        for item in schema.values():
            _as_binary(item)
    elif isinstance(schema, list):
        for item in schema:
            _as_binary(item)

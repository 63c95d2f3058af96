"""The OpenAPI document cog's server loads from .cog/openapi_schema.json, in the shape `cog build` writes it."""

from __future__ import annotations

from typing import Any

_JSON = "application/json"


def _ok(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "Successful Response", "content": {_JSON: {"schema": schema}}}


_INVALID = {
    "description": "Validation Error",
    "content": {_JSON: {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
}


def cog_openapi_schema(
    inputs: list[dict[str, Any]], enums: dict[str, dict[str, Any]], output: dict[str, Any], streaming: bool
) -> dict[str, Any]:
    """Input, Output and the fixed prediction envelope; streaming models are marked x-cog-streaming."""
    properties = {i["name"]: {k: v for k, v in i.items() if k != "name"} for i in inputs}
    required = [i["name"] for i in inputs if "default" not in i and not i.get("nullable")]
    input_schema: dict[str, Any] = {"title": "Input", "type": "object", "properties": properties}
    if required:
        input_schema["required"] = required
    date = {"type": "string", "format": "date-time"}
    components: dict[str, Any] = {"Input": input_schema, "Output": output, **enums}
    components["PredictionRequest"] = {
        "title": "PredictionRequest",
        "type": "object",
        "properties": {"id": {"title": "Id", "type": "string"}, "input": {"$ref": "#/components/schemas/Input"}},
    }
    components["PredictionResponse"] = {
        "title": "PredictionResponse",
        "type": "object",
        "properties": {
            "input": {"$ref": "#/components/schemas/Input"},
            "output": {"$ref": "#/components/schemas/Output"},
            "id": {"title": "Id", "type": "string"},
            "version": {"title": "Version", "type": "string"},
            "created_at": {"title": "Created At"} | date,
            "started_at": {"title": "Started At"} | date,
            "completed_at": {"title": "Completed At"} | date,
            "status": {"title": "Status", "type": "string"},
            "error": {"title": "Error", "type": "string"},
            "logs": {"title": "Logs", "type": "string"},
            "metrics": {"title": "Metrics", "type": "object"},
        },
    }
    components["Status"] = {
        "title": "Status",
        "description": "An enumeration.",
        "enum": ["starting", "processing", "succeeded", "canceled", "failed"],
        "type": "string",
    }
    components["HTTPValidationError"] = {
        "title": "HTTPValidationError",
        "type": "object",
        "properties": {
            "detail": {"title": "Detail", "type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}
        },
    }
    components["ValidationError"] = {
        "title": "ValidationError",
        "required": ["loc", "msg", "type"],
        "type": "object",
        "properties": {
            "loc": {
                "title": "Location",
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "msg": {"title": "Message", "type": "string"},
            "type": {"title": "Error Type", "type": "string"},
        },
    }
    predict: dict[str, Any] = {
        "summary": "Predict",
        "description": "Run a single prediction on the model",
        "operationId": "predict_predictions_post",
        "requestBody": {"content": {_JSON: {"schema": {"$ref": "#/components/schemas/PredictionRequest"}}}},
        "responses": {"200": _ok({"$ref": "#/components/schemas/PredictionResponse"}), "422": _INVALID},
    }
    if streaming:
        predict["x-cog-streaming"] = True
    cancel = {
        "summary": "Cancel",
        "operationId": "cancel_predictions__prediction_id__cancel_post",
        "parameters": [
            {
                "required": True,
                "schema": {"title": "Prediction_id", "type": "string"},
                "name": "prediction_id",
                "in": "path",
            }
        ],
        "responses": {"200": _ok({}), "422": _INVALID},
    }
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {
            "/": {"get": {"summary": "Root", "operationId": "root__get", "responses": {"200": _ok({})}}},
            "/health-check": {
                "get": {
                    "summary": "Healthcheck",
                    "operationId": "healthcheck_health_check_get",
                    "responses": {"200": _ok({})},
                }
            },
            "/predictions": {"post": predict},
            "/predictions/{prediction_id}/cancel": {"post": cancel},
        },
        "components": {"schemas": components},
    }

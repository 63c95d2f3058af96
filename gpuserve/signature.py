"""predict's signature -> one input model, an output type, and whether it streams."""

from __future__ import annotations

import collections.abc
import inspect
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model
from pydantic.fields import FieldInfo

from .errors import Problem

_STREAM_ORIGINS = {
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
}


@dataclass(frozen=True)
class PredictSignature:
    """How to call predict and what it gives back."""

    input_model: type[BaseModel]
    output_type: Any
    style: Literal["model", "kwargs"]
    streaming: bool
    is_async: bool

    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        schema = TypeAdapter(self.output_type).json_schema()
        if self.streaming:
            return {"type": "array", "items": schema, "x-gpuserve-stream": True}
        return schema

    def call_args(self, value: BaseModel) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments predict takes for a validated input."""
        if self.style == "model":
            return (value,), {}
        return (), {name: getattr(value, name) for name in type(value).model_fields}


def resolve_ref(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follow local `$ref`s (`#/$defs/Name`) to the schema they name."""
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def inspect_predict(cls: type) -> tuple[PredictSignature | None, list[Problem]]:
    """Read cls.predict. Returns the signature, or every problem found with it."""
    where = f"{cls.__name__}.predict"
    predict = getattr(cls, "predict", None)
    if predict is None or not callable(predict):
        return None, [
            Problem(
                field=where,
                value=None,
                message="is missing",
                allowed="a method predict(self, ...)",
                hint="add `def predict(self, ...) -> Output:`",
            )
        ]
    try:
        hints = typing.get_type_hints(predict, include_extras=True)
    except Exception as exc:  # NameError for forward references that cannot resolve
        return None, [
            Problem(
                field=where,
                value=str(exc),
                message="annotations cannot be resolved",
                allowed="types importable from the module",
                hint="import every type used in the annotations",
            )
        ]
    params = [p for p in inspect.signature(predict).parameters.values() if p.name != "self"]
    problems: list[Problem] = []
    if "return" not in hints:
        problems.append(
            Problem(
                field=f"{where} return",
                value=None,
                message="has no return annotation",
                allowed="a pydantic model, dict, list, a JSON scalar, or Iterator[...] to stream",
                hint="add `-> Output`",
            )
        )
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            problems.append(
                Problem(
                    field=f"{where}({p.name})",
                    value=str(p),
                    message="*args and **kwargs cannot become an input schema",
                    allowed="named parameters",
                    hint="name each input",
                )
            )
        elif p.name not in hints:
            problems.append(
                Problem(
                    field=f"{where}({p.name})",
                    value=None,
                    message="has no type annotation",
                    allowed="a type, e.g. `prompt: str`",
                    hint=f"annotate it: `{p.name}: str`",
                )
            )
    if problems:
        return None, problems

    is_gen_fn = inspect.isgeneratorfunction(predict) or inspect.isasyncgenfunction(predict)
    is_async = inspect.iscoroutinefunction(predict) or inspect.isasyncgenfunction(predict)
    returned = hints["return"]
    streaming, output_type = _stream_item(returned)
    if is_gen_fn and not streaming:
        problems.append(
            Problem(
                field=f"{where} return",
                value=returned,
                message="predict yields but its annotation does not stream",
                allowed="Iterator[T] or AsyncIterator[T]",
                hint="annotate it `-> Iterator[str]`",
            )
        )
    if streaming and not is_gen_fn:
        problems.append(
            Problem(
                field=f"{where} return",
                value=returned,
                message="is annotated to stream but predict does not yield",
                allowed="a generator function",
                hint="use `yield` in predict",
            )
        )
    try:
        TypeAdapter(output_type).json_schema()
    except Exception as exc:
        problems.append(
            Problem(
                field=f"{where} return",
                value=returned,
                message=f"has no JSON schema ({exc})",
                allowed="a pydantic model, dict, list or a JSON scalar",
                hint="return a pydantic model",
            )
        )

    style: Literal["model", "kwargs"] = "kwargs"
    only = params[0] if len(params) == 1 else None
    if (
        only is not None
        and inspect.isclass(hints[only.name])
        and issubclass(hints[only.name], BaseModel)
        and only.default is inspect.Parameter.empty
    ):
        style, input_model = "model", hints[only.name]
    else:
        fields: dict[str, Any] = {}
        for p in params:
            default = p.default
            if default is inspect.Parameter.empty:
                fields[p.name] = (hints[p.name], ...)
            elif isinstance(default, FieldInfo):
                fields[p.name] = (hints[p.name], default)
            else:
                fields[p.name] = (hints[p.name], default)
        try:
            input_model = create_model(f"{cls.__name__}Input", __config__=ConfigDict(extra="forbid"), **fields)
            input_model.model_json_schema()
        except Exception as exc:
            problems.append(
                Problem(
                    field=f"{where} parameters",
                    value=str(exc),
                    message="cannot become an input schema",
                    allowed="JSON types, pydantic models, Literal, Annotated[..., Field(...)]",
                    hint="change the parameter types",
                )
            )
    if problems:
        return None, problems
    return PredictSignature(input_model, output_type, style, streaming, is_async), []


def _stream_item(annotation: Any) -> tuple[bool, Any]:
    origin = get_origin(annotation)
    if origin in _STREAM_ORIGINS:
        args = get_args(annotation)
        return True, args[0] if args else Any
    return False, annotation

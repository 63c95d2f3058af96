"""predict's signature -> one input model, an output type, and whether it streams."""

from __future__ import annotations

import collections.abc
import inspect
import pathlib
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model
from pydantic.fields import FieldInfo

from .errors import Problem
from .files import File
from .spec import ItemError

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
    batched: bool = False  # predict takes list[input_model] and returns list[output_type], one per item

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
        return (), dict(value.__dict__)  # the fields, in order (extra="forbid": nothing else is kept there)


def resolve_ref(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follow local `$ref`s (`#/$defs/Name`) to the schema they name."""
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def inspect_predict(cls: type, *, batched: bool = False) -> tuple[PredictSignature | None, list[Problem]]:
    """Read cls.predict. Returns the signature, or every problem found with it.

    batched: the model declares gpuserve.Batch, so predict takes a list of items and returns a list of results;
    the signature describes one item and one result, which is what each request sends and gets.
    """
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
    hints = {name: files_for_paths(hint) for name, hint in hints.items()}
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
    if batched:
        return _batched(where, predict, params, hints)

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
    if not problems:
        problems += _server_paths(f"{where} parameters", input_model.model_json_schema())
        problems += _server_paths(f"{where} return", TypeAdapter(output_type).json_schema(mode="serialization"))
    if problems:
        return None, problems
    return PredictSignature(input_model, output_type, style, streaming, is_async), []


def files_for_paths(annotation: Any) -> Any:
    """`pathlib.Path` where predict's annotations name it (as cog users write it) means gpuserve.File.

    A plain Path field would read any string as a path on the server, and answer with one.
    """
    if annotation is pathlib.Path or annotation is pathlib.PosixPath:
        return File
    origin, args = get_origin(annotation), get_args(annotation)
    if not args:
        return annotation
    mapped = tuple(files_for_paths(arg) for arg in args)
    if mapped == args:
        return annotation
    if origin is typing.Annotated:
        return typing.Annotated[(mapped[0], *annotation.__metadata__)]
    if origin is types.UnionType or origin is typing.Union:
        return typing.Union[mapped]  # noqa: UP007  # rebuilt from its parts
    if origin is not None:
        try:
            return origin[mapped] if len(mapped) > 1 else origin[mapped[0]]
        except TypeError:  # an origin that cannot be subscripted again: leave it
            return annotation
    return annotation


def _server_paths(field: str, schema: dict[str, Any]) -> list[Problem]:
    """A Path left inside a model (where files_for_paths cannot reach) would read or reveal server paths."""
    found = sorted(set(_path_formats(schema)))
    return [
        Problem(
            field=field,
            value=name,
            message="holds a pathlib.Path inside a model: clients would name files on the server",
            allowed="gpuserve.File (a file fetched from a URL, data: URI or upload, or delivered back)",
            hint=f"annotate {name} as gpuserve.File",
        )
        for name in found
    ]


def _path_formats(schema: Any, name: str = "") -> typing.Iterator[str]:
    if isinstance(schema, dict):
        if schema.get("format") == "path":
            yield name or "the value"
        for key, item in schema.items():
            named = isinstance(item, dict) and key not in ("properties", "$defs")
            yield from _path_formats(item, key if named else name)
    elif isinstance(schema, list):
        for item in schema:
            yield from _path_formats(item, name)


_BATCHED = "def predict(self, items: list[Item]) -> list[Result], Item a pydantic model"


def _batched(
    where: str, predict: Any, params: list[inspect.Parameter], hints: dict[str, Any]
) -> tuple[PredictSignature | None, list[Problem]]:
    """The signature of a batched predict: list[Item] -> list[Result], described as one Item and one Result."""
    problems: list[Problem] = []
    returned = _unannotated(hints["return"])
    if inspect.isgeneratorfunction(predict) or inspect.isasyncgenfunction(predict) or _stream_item(returned)[0]:
        problems.append(
            Problem(
                field=f"{where} return",
                value=hints["return"],
                message="a batched predict cannot stream: each request of a group gets its result at once",
                allowed=_BATCHED,
                hint="drop batch=gpuserve.Batch(...) to stream, or return whole results",
            )
        )
    elif get_origin(returned) is not list or len(get_args(returned)) != 1:
        problems.append(
            Problem(
                field=f"{where} return",
                value=hints["return"],
                message="a batched predict returns a list: one result per item, in order",
                allowed=_BATCHED,
                hint="annotate it `-> list[Result]`",
            )
        )
    item: Any = None
    if len(params) != 1 or params[0].kind is inspect.Parameter.KEYWORD_ONLY:
        problems.append(
            Problem(
                field=f"{where} parameters",
                value=", ".join(p.name for p in params) or None,
                message="a batched predict takes one parameter, the list of items; the keyword form "
                "(predict(self, text: str, ...)) cannot be batched",
                allowed=_BATCHED,
                hint="put the inputs in a pydantic model Item and take `items: list[Item]`",
            )
        )
    else:
        taken = _unannotated(hints[params[0].name])
        item = get_args(taken)[0] if get_origin(taken) is list and len(get_args(taken)) == 1 else None
        is_model = inspect.isclass(item) and issubclass(item, BaseModel)
        if not is_model or params[0].default is not inspect.Parameter.empty:
            problems.append(
                Problem(
                    field=f"{where}({params[0].name})",
                    value=hints[params[0].name],
                    message="a batched predict takes a list of pydantic models, without a default; the keyword form "
                    "cannot be batched",
                    allowed=_BATCHED,
                    hint=f"declare `class Item(BaseModel)` with the inputs and take `{params[0].name}: list[Item]`",
                )
            )
    if problems:
        return None, problems
    output_type = _without_item_errors(get_args(returned)[0])
    try:
        TypeAdapter(output_type).json_schema()
    except Exception as exc:
        problems.append(
            Problem(
                field=f"{where} return",
                value=hints["return"],
                message=f"has no JSON schema ({exc})",
                allowed="list[R], R a pydantic model, dict, list or a JSON scalar",
                hint="return a list of pydantic models",
            )
        )
        return None, problems
    problems += _server_paths(f"{where} parameters", item.model_json_schema())
    problems += _server_paths(f"{where} return", TypeAdapter(output_type).json_schema(mode="serialization"))
    if problems:
        return None, problems
    is_async = inspect.iscoroutinefunction(predict)
    return PredictSignature(item, output_type, "model", streaming=False, is_async=is_async, batched=True), []


def _without_item_errors(annotation: Any) -> Any:
    """`Result | gpuserve.ItemError` -> Result: an ItemError fails its request, it is never an output."""
    if get_origin(annotation) not in (types.UnionType, typing.Union):
        return annotation
    kept = tuple(arg for arg in get_args(annotation) if not (inspect.isclass(arg) and issubclass(arg, ItemError)))
    return kept[0] if len(kept) == 1 else typing.Union[kept]  # noqa: UP007  # rebuilt from its parts


def _unannotated(annotation: Any) -> Any:
    """Annotated[T, ...] -> T."""
    return get_args(annotation)[0] if get_origin(annotation) is typing.Annotated else annotation


def _stream_item(annotation: Any) -> tuple[bool, Any]:
    origin = get_origin(annotation)
    if origin in _STREAM_ORIGINS:
        args = get_args(annotation)
        return True, args[0] if args else Any
    return False, annotation

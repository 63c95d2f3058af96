"""The model's JSON schemas -> cog's type system: run() parameters with Input() constraints, and the output type.

cog (and the schema generator its CLI runs) takes str, int, float, bool, lists and Optional of
those as inputs, and those plus Any, iterators and a flat BaseModel as outputs. Richer input
types cannot be expressed and fail the build; richer output parts become Any, which carries
the same JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Problem
from ..signature import resolve_ref
from ._common import python_type

_UNSET = object()


@dataclass(frozen=True)
class CogInput:
    name: str
    annotation: str
    input_args: str  # the inside of Input(...), rendered as Python
    schema: dict[str, Any]  # this input in the form cog's schema generator writes


@dataclass(frozen=True)
class CogOutput:
    annotation: str  # the run() return annotation
    fields: tuple[tuple[str, str], ...]  # (name, annotation) when the output is a cog BaseModel
    schema: dict[str, Any]
    concatenate: bool


def _nullable(schema: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    options = schema.get("anyOf")
    if options and len(options) == 2 and {"type": "null"} in options:
        inner = next(o for o in options if o != {"type": "null"})
        return resolve_ref(inner, defs), True
    return resolve_ref(schema, defs), False


def cog_inputs(input_schema: dict[str, Any]) -> tuple[list[CogInput], dict[str, dict[str, Any]], list[Problem]]:
    """run() parameters, the enum schemas cog writes for choices, and what cannot be expressed."""
    defs = input_schema.get("$defs", {})
    required = set(input_schema.get("required", []))
    inputs: list[CogInput] = []
    enums: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for order, (name, raw) in enumerate(input_schema.get("properties", {}).items()):
        prop, optional = _nullable(raw, defs)
        problem = _unsupported(name, prop)
        if problem:
            problems.append(problem)
            continue
        is_list = prop.get("type") == "array"
        item = resolve_ref(prop.get("items", {}), defs) if is_list else prop
        base = _cog_type(item) or "Any"  # _unsupported() refused what has no cog type
        annotation = f"list[{base}]" if is_list else str(base)
        if optional:
            annotation = f"Optional[{annotation}]"
        args: list[str] = []
        cog: dict[str, Any] = {"x-order": order}
        default = raw.get("default", _UNSET) if name not in required else _UNSET
        if default is not _UNSET:
            args.append(f"default={default!r}")
        choices = item.get("enum")
        if choices is not None:
            enum_name = name[:1].upper() + name[1:]
            enums[enum_name] = {
                "title": enum_name,
                "description": "An enumeration.",
                "enum": choices,
                "type": "integer" if base == "int" else "string",
            }
            cog["allOf"] = [{"$ref": f"#/components/schemas/{enum_name}"}]
        else:
            cog["title"] = " ".join(w[:1].upper() + w[1:] for w in name.split("_"))
            cog |= {"type": "array", "items": _prim_schema(base)} if is_list else _prim_schema(base)
        if default is not _UNSET:
            cog["default"] = default
        if optional:
            cog["nullable"] = True
        for key, arg, schema_key in _CONSTRAINTS:
            value = _constraint(item if key not in ("minItems",) else prop, key)
            if value is not None:
                args.append(f"{arg}={value!r}")
                cog[schema_key] = value
        if "description" in raw or "description" in prop:
            description = raw.get("description", prop.get("description"))
            args.insert(0, f"description={description!r}")
            cog["description"] = description
        if choices is not None:
            args.append(f"choices={choices!r}")
        inputs.append(CogInput(name, annotation, ", ".join(args), cog))
    return inputs, enums, problems


_CONSTRAINTS = (
    ("minimum", "ge", "minimum"),
    ("maximum", "le", "maximum"),
    ("minLength", "min_length", "minLength"),
    ("maxLength", "max_length", "maxLength"),
    ("pattern", "regex", "pattern"),
)


def _constraint(schema: dict[str, Any], key: str) -> Any:
    if key == "minimum" and "exclusiveMinimum" in schema:
        return schema["exclusiveMinimum"] + 1
    if key == "maximum" and "exclusiveMaximum" in schema:
        return schema["exclusiveMaximum"] - 1
    return schema.get(key)


def _json_type(base: str | None) -> str:
    return {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "Path": "string"}[base or "str"]


def _cog_type(schema: dict[str, Any]) -> str | None:
    """The cog annotation of a scalar schema: a gpuserve.File (a `format: uri` string) is cog's Path."""
    if schema.get("type") == "string" and schema.get("format") == "uri":
        return "Path"
    return python_type(schema)


def _unsupported(name: str, prop: dict[str, Any]) -> Problem | None:
    item = prop.get("items", {}) if prop.get("type") == "array" else prop
    if "$ref" in item or python_type(item) is None or (prop.get("type") == "array" and "enum" in item):
        return Problem(
            field=f"predict({name})",
            value=prop.get("type", prop.get("$ref", "object")),
            message="cog inputs cannot be objects, nested models or unions",
            allowed="str, int, float, bool, Literal choices, lists of these, and Optional of these",
            hint="flatten it into separate parameters, or take a JSON string and parse it in predict",
        )
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in item and item.get("type") != "integer":
            return Problem(
                field=f"predict({name})",
                value=item[key],
                message=f"cog has no {key} for floats",
                allowed="ge= and le= bounds",
                hint="use ge=/le= on this field",
            )
    if "multipleOf" in item:
        return Problem(
            field=f"predict({name})",
            value=item["multipleOf"],
            message="cog has no multiple_of",
            allowed="ge, le, min_length, max_length, regex, choices",
            hint="check it in predict instead",
        )
    return None


def cog_output(output_schema: dict[str, Any], streaming: bool, concurrent: bool) -> CogOutput:
    """The run() return annotation (and BaseModel fields) carrying the same JSON the model returns."""
    defs = output_schema.get("$defs", {})
    schema = resolve_ref(output_schema.get("items", {}) if streaming else output_schema, defs)
    if streaming:
        base = _cog_type(schema) or "Any"
        concatenate = base == "str"
        kind = (
            ("AsyncConcatenateIterator" if concurrent else "ConcatenateIterator")
            if concatenate
            else ("AsyncIterator" if concurrent else "Iterator")
        )
        cog = {"title": "Output", "type": "array", "items": _prim_schema(base), "x-cog-array-type": "iterator"}
        if concatenate:
            cog["x-cog-array-display"] = "concatenate"
        return CogOutput(f"{kind}[{base}]", (), cog, concatenate)
    if schema.get("type") == "object" and "properties" in schema:
        fields: list[tuple[str, str]] = []
        properties: dict[str, Any] = {}
        for name, raw in schema["properties"].items():
            annotation, prop = _field(raw, defs)
            fields.append((name, annotation))
            properties[name] = prop | {"title": " ".join(w[:1].upper() + w[1:] for w in name.split("_"))}
        required = [n for n in schema.get("required", []) if not properties[n].get("nullable")]
        cog = {"title": "Output", "type": "object", "properties": properties} | (
            {"required": required} if required else {}
        )
        return CogOutput("Output", tuple(fields), cog, False)
    if _cog_type(schema) == "Path":  # a file: cog delivers it (a data: URI, or uploaded with --upload-url)
        return CogOutput("Path", (), _prim_schema("Path") | {"title": "Output"}, False)
    annotation, prop = _field(schema, defs)
    if prop.get("type") == "array":
        return CogOutput(annotation, (), {"title": "Output", "type": "array", "items": prop["items"]}, False)
    return CogOutput(annotation, (), prop | {"title": "Output"}, False)


def _field(raw: dict[str, Any], defs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    prop, optional = _nullable(raw, defs)
    if prop.get("type") == "array":
        base = python_type(resolve_ref(prop.get("items", {}), defs)) or "Any"
        annotation, schema = f"list[{base}]", {"type": "array", "items": _prim_schema(base)}
    else:
        base = python_type(prop) or "Any"
        annotation, schema = base, _prim_schema(base)
    if optional:
        return f"Optional[{annotation}]", schema | {"nullable": True}
    return annotation, schema


def _prim_schema(base: str) -> dict[str, Any]:
    if base == "Path":
        return {"type": "string", "format": "uri"}
    return {"type": "object"} if base == "Any" else {"type": _json_type(base)}

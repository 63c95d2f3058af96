"""cog's annotations and Input() arguments -> gpuserve's, read from the runner's source with `ast`.

cog takes str, int, float, bool, Path, File, Secret, lists and Optional of these as inputs, and those plus
iterators and cog.BaseModel (a dataclass) as outputs. Each becomes its gpuserve form: Path is gpuserve.File
(a pathlib.Path the runtime fetched), Secret is a str handed back to the runner as a cog.Secret, choices are
a Literal, regex is pattern, and a cog.BaseModel output is mirrored by a pydantic model of the same fields.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from .pysource import NotLiteral, Source
from .report import Report
from .writer import AppPlan, Param, literal

_SCALARS = {"str": "str", "int": "int", "float": "float", "bool": "bool"}
_PATHS = {"cog.Path", "cog.types.Path", "pathlib.Path", "Path"}
_OPTIONAL = {"typing.Optional", "Optional"}
_UNION = {"typing.Union", "Union"}
_LISTS = {"list", "typing.List", "List"}
_SYNC_STREAMS = {
    "typing.Iterator",
    "collections.abc.Iterator",
    "typing.Generator",
    "collections.abc.Generator",
    "typing.Iterable",
    "collections.abc.Iterable",
    "cog.ConcatenateIterator",
    "cog.types.ConcatenateIterator",
}
_ASYNC_STREAMS = {
    "typing.AsyncIterator",
    "collections.abc.AsyncIterator",
    "typing.AsyncGenerator",
    "collections.abc.AsyncGenerator",
    "typing.AsyncIterable",
    "collections.abc.AsyncIterable",
    "cog.AsyncConcatenateIterator",
    "cog.types.AsyncConcatenateIterator",
}
_INPUT_KEYS = {"default", "description", "ge", "le", "min_length", "max_length", "regex", "choices", "deprecated"}


class Unsupported(Exception):
    """A type gpuserve cannot carry; the message says which and why."""


@dataclass
class Kind:
    """A translated annotation: its gpuserve source, and what the call to the original must convert."""

    source: str
    secret: bool = False  # str in gpuserve, cog.Secret for the runner
    legacy_file: bool = False  # gpuserve.File in gpuserve, a file object (cog.File) for the runner
    optional: bool = False
    is_list: bool = False
    holds_model: bool = False  # an output holding a cog.BaseModel (a dataclass): turned into plain data


@dataclass
class Output:
    annotation: str
    streaming: bool = False
    async_stream: bool = False
    holds_model: bool = False
    models: list[str] = field(default_factory=list)  # pydantic mirrors of cog.BaseModel classes, as source
    mirrored: set[str] = field(default_factory=set)


def annotation_node(node: ast.expr) -> ast.expr:
    """A string annotation ("Path") parsed into its expression."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return ast.parse(node.value, mode="eval").body
        except SyntaxError:
            raise Unsupported(f"the string annotation {node.value!r} is not a Python expression") from None
    return node


def input_kind(node: ast.expr, source: Source, plan: AppPlan) -> Kind:
    """An input annotation's gpuserve type."""
    node = annotation_node(node)
    name = source.qualname(node)
    if name in _SCALARS:
        return Kind(_SCALARS[name])
    if name in _PATHS:
        return Kind("gpuserve.File")
    if name in ("cog.File", "cog.types.File"):
        return Kind("gpuserve.File", legacy_file=True)
    if name in ("cog.Secret", "cog.types.Secret"):
        return Kind("str", secret=True)
    if name in ("typing.Any", "Any"):
        plan.need("typing", "Any")
        return Kind("Any")
    inner = _optional_of(node, source)
    if inner is not None:
        kind = input_kind(inner, source, plan)
        kind.source, kind.optional = f"{kind.source} | None", True
        return kind
    if isinstance(node, ast.Subscript) and source.qualname(node.value) in _LISTS:
        kind = input_kind(node.slice, source, plan)
        kind.source, kind.is_list = f"list[{kind.source}]", True
        return kind
    raise Unsupported(f"{source.segment(node)} is not an input type cog or gpuserve takes")


def _optional_of(node: ast.expr, source: Source) -> ast.expr | None:
    """X for Optional[X], Union[X, None] and X | None; else None."""
    if isinstance(node, ast.Subscript):
        outer = source.qualname(node.value)
        if outer in _OPTIONAL:
            return node.slice
        if outer in _UNION and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 2:
            rest = [e for e in node.slice.elts if not (isinstance(e, ast.Constant) and e.value is None)]
            return rest[0] if len(rest) == 1 else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        for this, other in ((node.left, node.right), (node.right, node.left)):
            if isinstance(other, ast.Constant) and other.value is None:
                return this
    return None


def parameter(arg: ast.arg, default: ast.expr | None, source: Source, plan: AppPlan, report: Report) -> Param:
    """One run() parameter as a gpuserve parameter, with every Input() constraint."""
    where = f"{source.name} {arg.arg}"
    if arg.annotation is None:
        raise Unsupported("has no type annotation (cog needs one too)")
    kind = input_kind(arg.annotation, source, plan)
    options: dict[str, Any] = {}
    call = default if isinstance(default, ast.Call) and source.qualname(default.func) == "cog.Input" else None
    if call is not None:
        if call.args:
            options["default"] = call.args[0]
        for item in call.keywords:
            if item.arg in _INPUT_KEYS or item.arg == "accept":
                options[str(item.arg)] = item.value
            else:
                report.skip(
                    f"{where} Input({item.arg}=...)", source.segment(item.value), "not an Input() option cog has"
                )
    elif default is not None:
        options["default"] = default
    values: dict[str, Any] = {}
    for key, node in options.items():
        try:
            values[key] = source.literal(node)
        except NotLiteral:
            report.skip(
                f"{where} Input({key}=...)",
                source.segment(node),
                "not a literal or a module constant holding one: it cannot be read without running the code; "
                "write the value itself into Input()" + (" (the input is required here)" if key == "default" else ""),
            )
    annotation = kind.source
    choices = values.get("choices")
    if choices is not None:
        plan.need("typing", "Literal")
        allowed = f"Literal[{', '.join(literal(c) for c in choices)}]"
        annotation = f"list[{allowed}]" if kind.is_list else allowed
        annotation += " | None" if kind.optional else ""
    accept: list[str] = []
    if "accept" in values:
        for entry in (part.strip() for part in str(values["accept"]).split(",")):
            if "/" in entry:
                accept.append(entry)
            elif entry:
                report.skip(
                    f"{where} Input(accept=...)",
                    entry,
                    "a file extension: gpuserve.FileLimits checks media types (image/png, image/*), not names",
                )
    if accept and "gpuserve.File" in kind.source:
        plan.need("typing", "Annotated")
        limits = f"gpuserve.FileLimits(content_types={literal(tuple(accept))})"
        annotation = annotation.replace("gpuserve.File", f"Annotated[gpuserve.File, {limits}]", 1)
    field_args = [f"description={literal(values['description'])}"] if values.get("description") is not None else []
    for key, arg_name in (("ge", "ge"), ("le", "le"), ("min_length", "min_length"), ("max_length", "max_length")):
        if values.get(key) is not None:
            field_args.append(f"{arg_name}={literal(values[key])}")
    if values.get("regex") is not None:
        field_args.append(f"pattern={literal(values['regex'])}")
    extra: dict[str, Any] = {"format": "password", "writeOnly": True} if kind.secret else {}
    if values.get("deprecated"):
        extra["deprecated"] = True
    if extra:
        field_args.append(f"json_schema_extra={literal(extra)}")
    if field_args:
        plan.need("pydantic", "Field")
    default_value = values.get("default")
    # cog reads a missing default, or None, as "required" unless the type is Optional (then None is the default).
    required = "default" not in values or (default_value is None and not kind.optional)
    passed = _passed(arg.arg, kind, plan)
    param = Param(
        name=arg.arg,
        annotation=annotation,
        required=required,
        default="" if required else literal(default_value),
        field_args=tuple(field_args),
        passed=passed,
    )
    return param


def _passed(name: str, kind: Kind, plan: AppPlan) -> str:
    """What the runner gets for this input: the value, or the cog type its annotation names."""
    if kind.secret:
        template = "Secret({})"  # cog.Secret, imported in predict: the runner calls get_secret_value()
    elif kind.legacy_file:
        plan.need("io")
        template = "io.BytesIO({}.read_bytes())"  # cog.File inputs are file objects
    else:
        return name
    expr = f"[{template.format('item')} for item in {name}]" if kind.is_list else template.format(name)
    return f"None if {name} is None else {expr}" if kind.optional else expr


def output(node: ast.expr | None, source: Source, plan: AppPlan) -> Output:
    """run()'s return annotation in gpuserve's terms: streams, files, and mirrors of cog.BaseModel outputs."""
    if node is None:
        raise Unsupported("run() has no return annotation (cog needs one too)")
    node = annotation_node(node)
    outer = source.qualname(node.value) if isinstance(node, ast.Subscript) else source.qualname(node)
    if outer in _SYNC_STREAMS | _ASYNC_STREAMS:
        item = node.slice if isinstance(node, ast.Subscript) else None
        if isinstance(item, ast.Tuple):  # Generator[Y, S, R]
            item = item.elts[0]
        result = Output("")
        chunk = _value_type(item, source, plan, result) if item is not None else "Any"
        if item is None:
            plan.need("typing", "Any")
        is_async = outer in _ASYNC_STREAMS
        plan.need("collections.abc", "AsyncIterator" if is_async else "Iterator")
        result.annotation = f"{'AsyncIterator' if is_async else 'Iterator'}[{chunk}]"
        result.streaming, result.async_stream = True, is_async
        return result
    result = Output("")
    result.annotation = _value_type(node, source, plan, result)
    return result


def _value_type(node: ast.expr, source: Source, plan: AppPlan, out: Output) -> str:
    node = annotation_node(node)
    name = source.qualname(node)
    if name in _SCALARS or name in ("dict", "list"):
        return _SCALARS.get(name or "", name or "")
    if name in _PATHS:
        return "gpuserve.File"
    if name in ("typing.Any", "Any"):
        plan.need("typing", "Any")
        return "Any"
    inner = _optional_of(node, source)
    if inner is not None:
        return f"{_value_type(inner, source, plan, out)} | None"
    if isinstance(node, ast.Subscript) and source.qualname(node.value) in _LISTS:
        return f"list[{_value_type(node.slice, source, plan, out)}]"
    if isinstance(node, ast.Subscript) and source.qualname(node.value) in ("dict", "typing.Dict", "Dict"):
        return "dict"
    if isinstance(node, ast.Name) and node.id in source.classes():
        cls = source.classes()[node.id]
        if any(base in ("cog.BaseModel", "cog.model.BaseModel") for base in source.base_names(cls)):
            _mirror(cls, source, plan, out)
            out.holds_model = True
            return cls.name
    raise Unsupported(f"{source.segment(node)} is not an output type cog or gpuserve takes")


def _mirror(cls: ast.ClassDef, source: Source, plan: AppPlan, out: Output) -> None:
    """A pydantic model with the fields of a cog.BaseModel output (defined once, before its users)."""
    if cls.name in out.mirrored:
        return
    out.mirrored.add(cls.name)
    plan.need("pydantic", "BaseModel")
    lines = [f"class {cls.name}(BaseModel):", f'    """The fields of {source.name}\'s cog.BaseModel {cls.name}."""', ""]
    fields = 0
    for stmt in cls.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            annotation = _value_type(stmt.annotation, source, plan, out)
            default = ""
            if stmt.value is not None:
                try:
                    default = f" = {literal(source.literal(stmt.value))}"
                except NotLiteral:
                    raise Unsupported(
                        f"{cls.name}.{stmt.target.id}'s default is not a literal ({source.segment(stmt.value)})"
                    ) from None
            lines.append(f"    {stmt.target.id}: {annotation}{default}")
            fields += 1
    if not fields:
        lines.append("    pass")
    out.models.append("\n".join(lines))

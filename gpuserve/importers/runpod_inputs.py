"""Which keys a RunPod handler reads from job["input"], read with `ast`: typed predict parameters where it is safe.

Three readings, in order:
1. The handler checks its input with runpod's own validator (`validate(job["input"], SCHEMA)`, SCHEMA a dict
   written out at module level): each schema entry becomes a parameter of its type, required or defaulted.
2. The handler only reads keys: `job["input"]["k"]` (required, any JSON value), `.get("k", literal)` (optional,
   typed by its default), directly or through one name (`values = job["input"]`).
3. Anything else (the dict passed on, iterated, checked with `in`): predict takes any JSON object, as RunPod does.
"""

from __future__ import annotations

import ast
import keyword as python_keyword
from dataclasses import dataclass
from typing import Any

from .pysource import Function, NotLiteral, Source
from .report import Report
from .writer import AppPlan, Param, literal

_VALIDATE = {"runpod.serverless.utils.rp_validator.validate", "runpod.serverless.utils.validate"}
_TYPES = {"str", "int", "float", "bool", "list", "dict"}
_NONE = object()


@dataclass
class Key:
    name: str
    annotation: str
    required: bool
    default: Any = None


class Escapes(Exception):
    """The input dict is used in a way that hides which keys are read; the message shows where."""


def read_inputs(source: Source, fn: Function, plan: AppPlan, report: Report) -> str:
    """Add predict's parameters to the plan; return the Python expression of the input dict handed to the handler."""
    if not fn.args.args:
        return "{}"
    job = fn.args.args[0].arg
    parents = {child: node for node in ast.walk(fn) for child in ast.iter_child_nodes(node)}
    try:
        keys, said = _validator_keys(source, fn, job, parents, report)
        if keys is None:
            keys = _read_keys(source, fn, job, parents)
            said = ", ".join(_describe(k) for k in keys) or "no keys"
            said = f"the handler reads {said}: predict takes them by name and refuses other keys (RunPod passed them)"
        bad = [
            k.name for k in keys if not k.name.isidentifier() or python_keyword.iskeyword(k.name) or k.name == "self"
        ]
        if bad:
            raise Escapes(f"the key {bad[0]!r} is not a Python name")
    except Escapes as exc:
        return _open(fn, str(exc), plan, report, source)
    report.decide(f"{source.name} {fn.name}(job['input'])", None, said)
    for key in keys:
        if key.annotation == "Any":
            plan.need("typing", "Any")
        plan.params.append(
            Param(key.name, key.annotation, required=key.required, default="" if key.required else literal(key.default))
        )
    return "{" + ", ".join(f"{literal(k.name)}: {k.name}" for k in keys) + "}"


def _describe(key: Key) -> str:
    kind = "any JSON value" if key.annotation == "Any" else key.annotation
    if key.required:
        return f"{key.name} ({kind}, required)"
    return f"{key.name} ({kind}, default {key.default!r})"


def _open(fn: Function, why: str, plan: AppPlan, report: Report, source: Source) -> str:
    plan.need("pydantic", "BaseModel")
    plan.need("pydantic", "ConfigDict")
    plan.blocks.append(_OPEN_INPUT)
    plan.params.append(Param("values", "HandlerInput", required=True))
    report.decide(
        f"{source.name} {fn.name}(job['input'])",
        None,
        f"{why}: predict takes any JSON object, as RunPod does (gpuserve's cog and modal targets need named inputs); "
        "read the keys in the handler as job['input']['name'] to get typed inputs",
    )
    return "values.model_dump()"


def _input_exprs(job: str, parents: dict[ast.AST, ast.AST], fn: Function, source: Source) -> list[ast.expr]:
    """The expressions that are the input dict: job["input"], job.get("input"); other uses of job checked."""
    found: list[ast.expr] = []
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Name) and node.id == job):
            continue
        if not isinstance(node.ctx, ast.Load):
            raise Escapes(f"{source.where(node)} assigns {job} again")
        parent = parents.get(node)
        key = _constant_key(parent, node, parents)
        if key is None:
            raise Escapes(f"{source.where(node)} uses {job} whole ({source.segment(parent or node)})")
        if key == "input":
            found.append(_key_expr(parent, parents))
    return found


def _constant_key(parent: ast.AST | None, node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str | None:
    """The key when parent reads node["key"] or node.get("key", ...); else None."""
    if isinstance(parent, ast.Subscript) and parent.value is node and isinstance(parent.ctx, ast.Load):
        if isinstance(parent.slice, ast.Constant) and isinstance(parent.slice.value, str):
            return parent.slice.value
    if isinstance(parent, ast.Attribute) and parent.attr == "get" and parent.value is node:
        call = parents.get(parent)
        if isinstance(call, ast.Call) and call.func is parent and call.args and not call.keywords:
            first = call.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) and len(call.args) <= 2:
                return first.value
    return None


def _key_expr(parent: ast.AST | None, parents: dict[ast.AST, ast.AST]) -> ast.expr:
    """The whole expression that reads a key: the Subscript, or the .get(...) Call."""
    if isinstance(parent, ast.Attribute):
        call = parents[parent]
        assert isinstance(call, ast.expr)
        return call
    assert isinstance(parent, ast.expr)
    return parent


def _read_keys(source: Source, fn: Function, job: str, parents: dict[ast.AST, ast.AST]) -> list[Key]:
    keys: dict[str, Key] = {}
    todo = _input_exprs(job, parents, fn, source)
    aliases: set[str] = set()
    while todo:
        expr = todo.pop(0)
        parent = parents.get(expr)
        if isinstance(parent, ast.Assign) and parent.value is expr and len(parent.targets) == 1:
            target = parent.targets[0]
            if isinstance(target, ast.Name) and target.id not in aliases:
                aliases.add(target.id)
                todo += _alias_uses(target, fn, parents, source)
                continue
        key = _constant_key(parent, expr, parents)
        if key is None:
            raise Escapes(f"{source.where(expr)} uses the input whole ({source.segment(parent or expr)})")
        _add_key(key, _key_expr(parent, parents), keys, source)
    return list(keys.values())


def _alias_uses(target: ast.Name, fn: Function, parents: dict[ast.AST, ast.AST], source: Source) -> list[ast.expr]:
    uses: list[ast.expr] = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and node.id == target.id and node is not target:
            if not isinstance(node.ctx, ast.Load):
                raise Escapes(f"{source.where(node)} assigns {target.id} again")
            uses.append(node)
    return uses


def _add_key(name: str, expr: ast.expr, keys: dict[str, Key], source: Source) -> None:
    if isinstance(expr, ast.Subscript):
        keys[name] = Key(name, "Any", required=True)
        return
    assert isinstance(expr, ast.Call)
    default: Any = None
    if len(expr.args) == 2:
        try:
            default = source.literal(expr.args[1])
        except NotLiteral:
            raise Escapes(f"{source.where(expr)} reads {name!r} with a default that is not a literal") from None
    if name in keys and (keys[name].required or keys[name].default != default):
        if not keys[name].required:
            raise Escapes(f"{source.where(expr)} reads {name!r} with two different defaults")
        return
    keys[name] = Key(name, _type_of(default), required=False, default=default)


def _type_of(value: Any) -> str:
    if value is None:
        return "Any"
    kind = type(value).__name__
    return {"tuple": "list"}.get(kind, kind) if kind in _TYPES | {"tuple"} else "Any"


def _validator_keys(
    source: Source, fn: Function, job: str, parents: dict[ast.AST, ast.AST], report: Report
) -> tuple[list[Key] | None, str]:
    """Keys from `validate(job["input"], SCHEMA)` (runpod's rp_validator), or None when the handler has none."""
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Call) and source.qualname(node.func) in _VALIDATE and len(node.args) == 2):
            continue
        schema = _module_dict(source, node.args[1])
        if schema is None:
            raise Escapes(f"{source.where(node)} validates against a schema that is not a dict written out")
        keys: list[Key] = []
        for key_node, rules in zip(schema.keys, schema.values, strict=True):
            if not (isinstance(key_node, ast.Constant) and isinstance(key_node.value, str)):
                raise Escapes(f"{source.where(schema)}: a schema key is not a string")
            if not isinstance(rules, ast.Dict):
                raise Escapes(f"{source.where(rules)}: the rules of {key_node.value!r} are not a dict written out")
            keys.append(_schema_key(key_node.value, rules, source, report))
        named = ", ".join(_describe(k) for k in keys)
        return keys, (
            f"typed from {source.segment(node.args[1])} (runpod's validator): {named}; the handler still validates too"
        )
    return None, ""


def _module_dict(source: Source, node: ast.expr) -> ast.Dict | None:
    if isinstance(node, ast.Dict):
        return node
    if isinstance(node, ast.Name):
        for stmt in source.tree.body:
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id for t in stmt.targets):
                return stmt.value if isinstance(stmt.value, ast.Dict) else None
    return None


def _schema_key(name: str, rules: ast.Dict, source: Source, report: Report) -> Key:
    given = {k.value: v for k, v in zip(rules.keys, rules.values, strict=True) if isinstance(k, ast.Constant)}
    kind = given.get("type")
    annotation = kind.id if isinstance(kind, ast.Name) and kind.id in _TYPES else "Any"
    try:
        required = bool(source.literal(given["required"])) if "required" in given else True
        default = source.literal(given["default"]) if "default" in given else None
    except NotLiteral as exc:
        raise Escapes(f"{source.where(rules)}: a rule of {name!r} is not a literal ({exc})") from None
    if "constraints" in given:
        report.skip(
            f"{source.where(given['constraints'])} {name} constraints",
            source.segment(given["constraints"]),
            "a function cannot become a schema constraint: the handler's own validate() call still applies it, as "
            "on RunPod (a failure, not a 422)",
        )
    return Key(name, annotation if required or default is not None else f"{annotation} | None", required, default)


_OPEN_INPUT = '''class HandlerInput(BaseModel):
    """Any JSON object, handed to the handler as job["input"]: which keys it reads cannot be told from its code."""

    model_config = ConfigDict(extra="allow")'''

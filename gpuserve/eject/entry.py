"""What every ejected entry point shares: the input model written out, the imports it needs, how to call predict.

For `predict(self, name: str, ...)` the parameters become a pydantic class, each annotation and default copied
from the user's source; for `predict(self, inp: Input)` the user's own class is imported. The names those
annotations use are imported the way the user's module imports them.
"""

from __future__ import annotations

import ast
import builtins
import sys
from dataclasses import dataclass

from ..errors import Problem
from ..loader import LoadedApp

# Names the entry points bind themselves: a user's name among them is imported under another name.
RESERVED = frozenset(
    {
        "Any", "AsyncIterator", "BaseModel", "BaseRunner", "ConcatenateIterator", "AsyncConcatenateIterator",
        "ConfigDict", "FastAPI", "Header", "Input", "Iterator", "JSONResponse", "Optional", "Output",
        "PredictRequest", "Request", "RequestValidationError", "Runner", "StreamingResponse", "ValidationError",
        "app", "asynccontextmanager", "asyncio", "cog", "concurrent", "error", "events", "handler", "health",
        "image", "invalid", "json", "lifespan", "modal", "model", "predict", "refused", "runpod",
        "to_jsonable_python",
    }
)  # fmt: skip


@dataclass(frozen=True)
class EntryInput:
    name: str  # the input class's name in the entry point
    definition: str  # its source, or "" when it is imported from the user's module
    imports: tuple[str, ...]  # `import ...` / `from ... import ...` lines it needs
    call: str  # predict's arguments for a validated input `inp`


def find_class(tree: ast.Module, name: str) -> ast.ClassDef | None:
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)


def find_method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    methods = (n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    return next((m for m in methods if m.name == name), None)


def entry_input(app: LoadedApp, tree: ast.Module, text: str, where: str) -> tuple[EntryInput | None, list[Problem]]:
    """The input class the entry validates with, or the problem that stops it being written out."""
    cls = find_class(tree, app.cls.__name__)
    predict = find_method(cls, "predict") if cls is not None else None
    if predict is None:
        return None, [
            Problem(
                field=f"{where} {app.cls.__name__}.predict",
                value=None,
                message="is not written in the class body itself (inherited or assigned), so its source cannot "
                "be copied",
                allowed="def predict(...) inside the decorated class",
                hint="define predict in the class, then eject again",
            )
        ]
    params = [a for a in predict.args.posonlyargs + predict.args.args + predict.args.kwonlyargs][1:]
    defaults = _defaults(predict.args)
    signature = app.signature
    if signature.style == "model":
        annotation = params[0].annotation
        assert annotation is not None  # the decorator refused unannotated parameters
        if signature.batched and isinstance(annotation, ast.Subscript):
            annotation = annotation.slice  # list[Item] -> Item
        name = ast.get_source_segment(text, annotation) or signature.input_model.__name__
        call = "[inp]" if signature.batched else "inp"
        lines = imported(tree, app, _roots([annotation]))
        if isinstance(annotation, ast.Name) and annotation.id in RESERVED:  # `Input` is also cog's: rename ours
            alias = f"{app.cls.__name__}Input"
            lines = tuple(f"{line.split(' as ')[0]} as {alias}" if _binds(line, name) else line for line in lines)
            name = alias
        return EntryInput(name, "", lines, call), []
    name = f"{app.cls.__name__}Input"
    taken = sorted(set(_roots([p.annotation for p in params if p.annotation is not None])) & RESERVED)
    if taken:
        return None, [
            Problem(
                field=f"{where} {app.cls.__name__}.predict",
                value=", ".join(taken),
                message="its annotations use names the entry point binds itself",
                allowed=f"names other than {', '.join(sorted(RESERVED))}",
                hint="import them under another name (`from x import Input as PromptInput`), then eject again",
            )
        ]
    fields = []
    nodes: list[ast.expr] = []
    for param in params:
        assert param.annotation is not None
        line = f"    {param.arg}: {ast.get_source_segment(text, param.annotation)}"
        nodes.append(param.annotation)
        default = defaults.get(param.arg)
        if default is not None:
            line += f" = {ast.get_source_segment(text, default)}"
            nodes.append(default)
        fields.append(line)
    definition = "\n".join(
        [
            f"class {name}(BaseModel):",
            f'    """{app.cls.__name__}.predict\'s parameters; a request\'s input must match them exactly."""',
            "",
            '    model_config = ConfigDict(extra="forbid", strict=True)',
            "",
            *fields,
        ]
    )
    return EntryInput(name, definition, imported(tree, app, _roots(nodes)), "**dict(inp)"), []


def _binds(line: str, name: str) -> bool:
    """Whether an import line binds `name` (`from m import name`, `import name`)."""
    return line.split(" as ")[0].rsplit(" ", 1)[-1] == name and " as " not in line


def _defaults(args: ast.arguments) -> dict[str, ast.expr]:
    positional = args.posonlyargs + args.args
    found = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults) :]], args.defaults, strict=True))
    found |= {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None}
    return found


def _roots(nodes: list[ast.expr]) -> list[str]:
    """The names an expression reads first (`typing` of `typing.Annotated`), in order, once each."""
    seen: dict[str, None] = {}
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                seen[sub.id] = None
    return [n for n in seen if not hasattr(builtins, n)]


def imported(tree: ast.Module, app: LoadedApp, names: list[str]) -> tuple[str, ...]:
    """Import lines that bind `names` in the entry as they are bound in the user's module."""
    package = app.module_name.rpartition(".")[0]
    lines: list[str] = []
    for name in names:
        line = f"from {app.module_name} import {name}"  # defined in the module itself
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if (alias.asname or alias.name.split(".")[0]) == name:
                        line = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        module = _absolute(node, package)
                        line = f"from {module} import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
        lines.append(line)
    return tuple(lines)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    """`from .schemas import X` in package `pkg` -> `pkg.schemas`."""
    if not node.level:
        return node.module or ""
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*base, *([node.module] if node.module else [])])


def sort_imports(lines: list[str], local: str) -> str:
    """Import lines grouped as ruff and isort do: standard library, third party, then the user's module."""
    merged: dict[tuple[str, bool], set[str]] = {}
    for line in dict.fromkeys(lines):
        if line.startswith("from "):
            module, _, listed = line[5:].partition(" import ")
            merged.setdefault((module, True), set()).update(n.strip() for n in listed.split(","))
        else:
            merged.setdefault((line[7:], False), set())
    groups: list[list[str]] = [[], [], []]
    for (module, is_from), names in merged.items():
        top = module.split(".")[0]
        group = 2 if top == local else 0 if top in sys.stdlib_module_names or top == "__future__" else 1
        key = sorted(names, key=lambda n: (not n[:1].isupper(), n.lower()))
        groups[group].append(f"from {module} import {', '.join(key)}" if is_from else f"import {module}")
    blocks = [sorted(g, key=lambda line: (line.startswith("from "), line.split()[1].lower())) for g in groups if g]
    return "\n\n".join("\n".join(block) for block in blocks)

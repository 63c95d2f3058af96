"""Reading a user's Python file with `ast` only: imports, module constants, classes, methods and literals.

The importers never import or run the user's code: a module that loads a model at import time would load it
here, and one that calls `runpod.serverless.start` would start a worker. What cannot be read this way is
reported, never guessed.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LoadError, Problem

Function = ast.FunctionDef | ast.AsyncFunctionDef


class ImportFailed(LoadError):
    """The project cannot be read as a cog or RunPod project; the message names the file, what and the fix."""

    def __init__(self, subject: str, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [f"{subject}: {len(problems)} problem{'s' if len(problems) != 1 else ''}:"]
        super().__init__("\n".join(lines + [f"  - {p.render()}" for p in problems]))


def failed(subject: str, field_: str, value: object, message: str, allowed: str = "", hint: str = "") -> ImportFailed:
    return ImportFailed(subject, [Problem(field=field_, value=value, message=message, allowed=allowed, hint=hint)])


class NotLiteral(Exception):
    """An expression that is not a literal, nor a module-level constant holding one."""


@dataclass
class Source:
    """One parsed Python file: its tree, what its names are bound to, and its literal constants."""

    path: Path
    tree: ast.Module
    imports: dict[str, str] = field(default_factory=dict)  # local name -> dotted name it was imported as
    constants: dict[str, Any] = field(default_factory=dict)  # NAME = <literal> at module level

    @classmethod
    def read(cls, path: Path) -> Source:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise failed(str(path), "file", str(path), f"cannot be read ({exc.strerror or exc})") from None
        try:
            tree = ast.parse(text, filename=str(path))
        except SyntaxError as exc:
            raise failed(
                str(path), f"line {exc.lineno}", exc.text, f"is not valid Python ({exc.msg})", hint="fix the file"
            ) from None
        source = cls(path, tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        source.imports[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        source.imports[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    source.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for stmt in tree.body:
            target, value = _assignment(stmt)
            if target is not None and value is not None:
                try:
                    source.constants[target] = ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    pass
        return source

    @property
    def name(self) -> str:
        return self.path.name

    def where(self, node: ast.AST) -> str:
        return f"{self.path.name}:{getattr(node, 'lineno', '?')}"

    def segment(self, node: ast.AST) -> str:
        """The source text of a node, on one line."""
        return " ".join(ast.unparse(node).split())

    def qualname(self, node: ast.AST | None) -> str | None:
        """The dotted name an expression stands for through the imports: `Input` -> `cog.Input`."""
        if isinstance(node, ast.Name):
            return self.imports.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def literal(self, node: ast.AST) -> Any:
        """The value of a literal, or of a module-level constant holding one. Raises NotLiteral otherwise."""
        if isinstance(node, ast.Name) and node.id in self.constants:
            return self.constants[node.id]
        if isinstance(node, ast.List | ast.Tuple):
            return [self.literal(item) for item in node.elts]
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise NotLiteral(self.segment(node)) from None

    def classes(self) -> dict[str, ast.ClassDef]:
        return {node.name: node for node in self.tree.body if isinstance(node, ast.ClassDef)}

    def functions(self) -> dict[str, Function]:
        return {node.name: node for node in self.tree.body if isinstance(node, Function)}

    def method(self, cls: ast.ClassDef, name: str) -> tuple[ast.ClassDef, Function] | None:
        """cls's method `name`, or the nearest one its base classes in this file define, with its owner."""
        seen: set[str] = set()
        todo = [cls]
        classes = self.classes()
        while todo:
            current = todo.pop(0)
            if current.name in seen:
                continue
            seen.add(current.name)
            for node in current.body:
                if isinstance(node, Function) and node.name == name:
                    return current, node
            todo += [classes[b.id] for b in current.bases if isinstance(b, ast.Name) and b.id in classes]
        return None

    def base_names(self, cls: ast.ClassDef) -> set[str]:
        """Every dotted base name of cls, through the base classes this file defines."""
        names: set[str] = set()
        classes = self.classes()
        todo, seen = [cls], set()
        while todo:
            current = todo.pop()
            if current.name in seen:
                continue
            seen.add(current.name)
            for base in current.bases:
                name = self.qualname(base)
                if name:
                    names.add(name)
                if isinstance(base, ast.Name) and base.id in classes:
                    todo.append(classes[base.id])
        return names


def _assignment(stmt: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        return stmt.targets[0].id, stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
        return stmt.target.id, stmt.value
    return None, None


def own_nodes(fn: Function) -> list[ast.AST]:
    """The nodes of a function's body, not those of functions, lambdas or classes defined inside it."""
    nested = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
    found: list[ast.AST] = []
    todo: list[ast.AST] = [stmt for stmt in fn.body if not isinstance(stmt, nested)]
    while todo:
        node = todo.pop()
        found.append(node)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, nested):
                todo.append(child)
    return found


def yields(fn: Function) -> bool:
    """Whether fn is a generator (or async generator) function."""
    return any(isinstance(node, ast.Yield | ast.YieldFrom) for node in own_nodes(fn))


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def constant_return(node: ast.AST, source: Source) -> int | None:
    """The whole number a lambda or a one-line function always returns (`lambda current: 4`), or None."""
    body: ast.AST | None = None
    if isinstance(node, ast.Lambda):
        body = node.body
    elif isinstance(node, ast.Name):
        fn = source.functions().get(node.id)
        returns = [n for n in own_nodes(fn) if isinstance(n, ast.Return)] if fn else []
        if fn is not None and len(fn.body) == 1 and len(returns) == 1:
            body = returns[0].value
    if body is None:
        return None
    try:
        value = source.literal(body)
    except NotLiteral:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None

"""The user's module without gpuserve: its imports, the @model decorators and the settings only they used go.

Edits are made on the source text at the places `ast` finds, so everything else (comments, formatting, the
order of things) stays as the user wrote it. What the class still uses from gpuserve is translated where plain
Python can do the same (`weights_path`, `ItemError`) and refused otherwise, naming it and why.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ..errors import Problem
from ..weights import URL, HuggingFace, Local, WeightSource

PACKAGE = "gpuserve"


@dataclass
class Aliases:
    """How a module reaches gpuserve: names bound to the package (`gpuserve`, `gs`) and names imported from it."""

    modules: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)  # local name -> gpuserve's name

    def meaning(self, node: ast.AST) -> str | None:
        """The gpuserve name a Name or an Attribute chain stands for (`model`, `Image`), or None."""
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute):
            root: ast.AST = node
            parts = []
            while isinstance(root, ast.Attribute):
                parts.append(root.attr)
                root = root.value
            if isinstance(root, ast.Name) and root.id in self.modules:
                return parts[-1]
        return None


@dataclass(frozen=True)
class Edit:
    """Replace the text from (line, col) to (end_line, end_col) (1-based lines, 0-based columns)."""

    line: int
    col: int
    end_line: int
    end_col: int
    text: str


@dataclass(frozen=True)
class Rewritten:
    text: str
    translated: tuple[str, ...]  # what was translated, for the notes
    problems: tuple[Problem, ...]


def aliases(tree: ast.Module) -> Aliases:
    found = Aliases()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    found.modules.add(alias.asname or PACKAGE)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE and not node.level:
            for alias in node.names:
                found.names[alias.asname or alias.name] = alias.name
    return found


def _whole_lines(node: ast.AST, lines: list[str]) -> Edit:
    """Remove the lines a node spans (a decorator, a statement), with what else is on them (a comment)."""
    start, end = node.lineno, node.end_lineno or node.lineno  # type: ignore[attr-defined]
    return Edit(start, 0, end, len(lines[end - 1]), "\0")  # "\0": the lines go, not just their text


def _span(node: ast.AST, text: str) -> Edit:
    return Edit(node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, text)  # type: ignore[attr-defined]


def _inside(line: int, removed: list[Edit]) -> bool:
    return any(e.line <= line <= e.end_line for e in removed)


def _names_used(tree: ast.Module, removed: list[Edit], skip: ast.AST, replaced: set[int]) -> set[str]:
    """Module-level names read outside `skip`, the removed lines and the `replaced` nodes (a function's own locals
    do not count)."""
    skipped = {id(n) for n in ast.walk(skip)} | replaced
    used: set[str] = set()

    def visit(node: ast.AST, local: frozenset[str]) -> None:
        if id(node) in skipped:
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
            params += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
            stored = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            local = local | set(params) | stored
        elif isinstance(node, ast.Name) and node.id not in local and not _inside(node.lineno, removed):
            used.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, local)

    visit(tree, frozenset())
    return used


def rewrite(text: str, module: ModuleType | None, weights: tuple[WeightSource, ...], where: str) -> Rewritten:
    """The module's source without gpuserve, what was translated, and what could not be."""
    tree = ast.parse(text)
    lines = text.splitlines()
    found = aliases(tree)
    removed: list[Edit] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == PACKAGE for a in node.names):
            kept = [a for a in node.names if a.name.split(".")[0] != PACKAGE]
            if kept:
                names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in kept)
                removed.append(_span(node, f"import {names}"))
            else:
                removed.append(_whole_lines(node, lines))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE and not node.level:
            removed.append(_whole_lines(node, lines))
        elif isinstance(node, ast.ClassDef):
            for decorator in node.decorator_list:
                called = decorator.func if isinstance(decorator, ast.Call) else decorator
                if found.meaning(called) == "model":
                    removed.append(_whole_lines(decorator, lines))
    # Module-level settings only the decorators used (image = gpuserve.Image(...)) go with them, and weight sources
    # only weights_path(source) reads (the call is rewritten to take the source's id).
    replaced = {
        id(node.args[0])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and found.meaning(node.func) == "weights_path" and _weight_id(node, module)
    }
    changed = True
    while changed:
        changed = False
        for statement in tree.body:
            if _inside(statement.lineno, removed) or not isinstance(statement, ast.Assign | ast.AnnAssign):
                continue
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            if not all(isinstance(t, ast.Name) for t in targets) or not _uses(statement, found):
                continue
            bound = {t.id for t in targets if isinstance(t, ast.Name)}
            if not bound & _names_used(tree, removed, statement, replaced):
                removed.append(_whole_lines(statement, lines))
                changed = True
    edits, translated, problems = _leftovers(tree, found, removed, module, weights, where)
    body = _apply(lines, removed + edits)
    helpers = [HELPERS[name](weights) for name in sorted(set(translated))]
    if helpers:
        body = _insert_after_imports(body, "\n\n\n".join(helpers))
    return Rewritten(text=_tidy(body), translated=tuple(sorted(set(translated))), problems=tuple(problems))


def _uses(node: ast.AST, found: Aliases) -> bool:
    return any(found.meaning(n) is not None for n in ast.walk(node))


def _leftovers(
    tree: ast.Module,
    found: Aliases,
    removed: list[Edit],
    module: ModuleType | None,
    weights: tuple[WeightSource, ...],
    where: str,
) -> tuple[list[Edit], list[str], list[Problem]]:
    """Translate what plain Python can do (weights_path, ItemError); a Problem for every other use of gpuserve."""
    edits: list[Edit] = []
    translated: list[str] = []
    problems: list[Problem] = []
    handled: set[int] = set()
    for node in ast.walk(tree):
        if id(node) in handled or _inside(getattr(node, "lineno", 0), removed):
            continue
        if isinstance(node, ast.Call) and found.meaning(node.func) == "weights_path":
            source_id = _weight_id(node, module)
            handled |= {id(n) for n in ast.walk(node.func)}
            if source_id is None or not node.args:
                problems.append(_refusal(where, node, "weights_path", "takes a repo id, path or a source object"))
                continue
            chosen = next((w for w in weights if w.id == source_id), None)
            if isinstance(chosen, URL):
                problems.append(_refusal(where, node, "weights_path", URL_WHY))
                continue
            edits.append(_span(node.func, "weights_path"))
            edits.append(_span(node.args[0], repr(source_id)))
            handled |= {id(n) for n in ast.walk(node.args[0])}
            translated.append("weights_path")
            continue
        meaning = found.meaning(node)
        if meaning is None:
            continue
        handled |= {id(n) for n in ast.walk(node)}
        if meaning == "ItemError":
            edits.append(_span(node, "ItemError"))
            translated.append("ItemError")
        else:
            problems.append(_refusal(where, node, meaning, WHY.get(meaning, GENERIC_WHY)))
    problems.sort(key=lambda p: int(p.field.rsplit(":", 1)[-1]) if p.field.rsplit(":", 1)[-1].isdigit() else 0)
    return edits, translated, problems


def _weight_id(call: ast.Call, module: ModuleType | None) -> str | None:
    """The id a weights_path call asks for: a string, or a module-level name bound to a weight source."""
    if not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.Name) and module is not None:
        value: Any = getattr(module, arg.id, None)
        if isinstance(value, HuggingFace | URL | Local):
            return value.id
    return None


def _refusal(where: str, node: ast.AST, name: str, why: str) -> Problem:
    return Problem(
        field=f"{where}:{getattr(node, 'lineno', '?')}",
        value=f"gpuserve.{name}",
        message=f"the ejected code cannot use it: {why}",
        allowed="plain Python and the libraries in the image; weights_path for Hugging Face and Local weights",
        hint=FIXES.get(name, "replace it with plain Python, then eject again"),
    )


URL_WHY = "URL weights are downloaded and their sha256 checked by gpuserve's runtime before setup()"
GENERIC_WHY = "it belongs to gpuserve, which the ejected directory does not install"
WHY = {
    "File": "files are fetched (URLs, data: URIs, uploads, within FileLimits) and delivered back (data: URIs or "
    "uploads) by gpuserve's runtime, and each platform moves files its own way",
    "FileLimits": "file limits are enforced by gpuserve's runtime while it fetches a file input",
}
FIXES = {
    "File": "take the file as a URL or base64 string and fetch or decode it in predict (return one likewise), "
    "then eject again",
    "FileLimits": "check the size and type in predict, then eject again",
    "weights_path": "download the file in setup() yourself (urllib, then check its sha256), or use a Hugging Face "
    "or Local source, then eject again",
}


def _weights_helper(weights: tuple[WeightSource, ...]) -> str:
    lines = [
        "def weights_path(source: str) -> Path:",
        '    """Where a weight source is on disk, fetched on first use (Hugging Face sources through its cache)."""',
    ]
    for w in weights:
        if isinstance(w, HuggingFace):
            patterns = list(w.allow_patterns) if w.allow_patterns else None
            lines += [
                f"    if source == {w.id!r}:",
                "        from huggingface_hub import snapshot_download",
                "",
                f"        return Path(snapshot_download({w.repo_id!r}, revision={w.revision!r}, "
                f"allow_patterns={patterns!r}))",
            ]
        elif isinstance(w, Local):
            lines += [f"    if source == {w.id!r}:", f"        return Path(__file__).resolve().parent / {w.path!r}"]
    known = ", ".join(w.id for w in weights if not isinstance(w, URL)) or "none"
    lines.append(f'    raise KeyError(f"no weight source {{source!r}}; the declared ones are: {known}")')
    return "\n".join(lines)


def _item_error_helper(_weights: tuple[WeightSource, ...]) -> str:
    return (
        "class ItemError(Exception):\n"
        '    """Returned by predict in an item\'s place: that request fails with this message."""'
    )


HELPERS = {"weights_path": _weights_helper, "ItemError": _item_error_helper}


def _apply(lines: list[str], edits: list[Edit]) -> str:
    """Apply edits from the last to the first, so earlier positions stay right."""
    out = list(lines)
    for edit in sorted(edits, key=lambda e: (e.line, e.col), reverse=True):
        if edit.text == "\0":
            del out[edit.line - 1 : edit.end_line]
            continue
        head = out[edit.line - 1][: edit.col]
        tail = out[edit.end_line - 1][edit.end_col :]
        out[edit.line - 1 : edit.end_line] = (head + edit.text + tail).split("\n")
    return "\n".join(out) + "\n"


def _insert_after_imports(text: str, helper: str) -> str:
    """Put a helper after the module's top-level imports (or its docstring), so its names are defined."""
    tree = ast.parse(text)
    anchor = 0
    for statement in tree.body:
        docstring = isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
        if isinstance(statement, ast.Import | ast.ImportFrom) or (docstring and statement is tree.body[0]):
            anchor = statement.end_lineno or statement.lineno
        else:
            break
    lines = text.splitlines()
    needs_path = "Path" in helper and not _binds(tree, "Path")
    block = (["from pathlib import Path", ""] if needs_path else []) + ["", helper, ""]
    return "\n".join(lines[:anchor] + [""] + block + lines[anchor:]) + "\n"


def _binds(tree: ast.Module, name: str) -> bool:
    return any(
        (alias.asname or alias.name) == name
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    )


def _tidy(text: str) -> str:
    """At most two blank lines in a row, and no blank lines at the start or the end."""
    return re.sub(r"\n{4,}", "\n\n\n", text).strip("\n") + "\n"


def references(text: str) -> Iterator[tuple[int, str]]:
    """(line, name) for every import of, or name from, gpuserve left in a module: what an ejected file must not hold."""
    tree = ast.parse(text)
    found = aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [module or ""]
            if any(n.split(".")[0] == PACKAGE for n in names) and not getattr(node, "level", 0):
                yield node.lineno, "import"
        meaning = found.meaning(node)
        if meaning is not None:
            yield getattr(node, "lineno", 0), meaning

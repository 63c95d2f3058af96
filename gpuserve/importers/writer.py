"""An import plan -> the text of a gpuserve app file, and writing it without overwriting what gpuserve did not write.

The app is plain Python a person can read and edit: the decorator with the carried settings, a class whose
setup() makes the original class (or loads the original module) and whose predict() takes the original inputs
and calls the original code. Every value from the user's project reaches the text through `repr`, so no
description, default or package name can break out of its string.
"""

from __future__ import annotations

import json
import keyword
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import BuildError, Problem
from .report import Report

MARK = "# Written by `gpuserve import"  # the first line of every app this module writes
_FIRST_PARTY = ("gpuserve",)
_THIRD_PARTY = ("pydantic",)


def literal(value: object) -> str:
    """A Python literal for a value read from the user's project, in the house style (double quotes)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are Python's; control characters are escaped
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return f'float("{value}")'
        return repr(value)
    if isinstance(value, tuple):
        items = [literal(item) for item in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    if isinstance(value, list):
        return f"[{', '.join(literal(item) for item in value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"{value!r} is not a literal gpuserve import writes")


@dataclass(frozen=True)
class Param:
    """One predict parameter: its annotation and Field arguments as Python source, and what the original gets."""

    name: str
    annotation: str
    required: bool
    default: str = ""  # Python source of the default, when not required
    field_args: tuple[str, ...] = ()  # keyword arguments of Field(...), as source: 'description="..."'
    passed: str = ""  # the expression handed to the original code (default: the parameter itself)

    def declaration(self, after_default: bool) -> str:
        if self.field_args or (self.required and after_default):
            first = "..." if self.required else self.default
            return f"{self.name}: {self.annotation} = Field({', '.join([first, *self.field_args])})"
        if self.required:
            return f"{self.name}: {self.annotation}"
        return f"{self.name}: {self.annotation} = {self.default}"


@dataclass
class AppPlan:
    """Everything the app file says, decided by an importer."""

    command: str  # the gpuserve import command line that writes this file again
    summary: str  # one sentence: what the app wraps
    name: str
    class_name: str
    report: Report
    out: Path  # where the app is written: beside the module it imports
    gpu: str | None = None
    python: str = "3.11"
    pip: list[str] = field(default_factory=list)
    apt: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    concurrency: int = 1
    imports: set[tuple[str, str]] = field(default_factory=set)  # (module, name); name "" for `import module`
    blocks: list[str] = field(default_factory=list)  # helper classes and functions, before the model class
    setup_async: bool = False
    setup_lines: list[str] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    returns: str = "Any"
    predict_async: bool = False
    predict_lines: list[str] = field(default_factory=list)

    def need(self, module: str, name: str = "") -> None:
        self.imports.add((module, name))


def call_lines(head: str, args: list[str], tail: str = "", width: int = 112) -> list[str]:
    """`head(args)tail` on one line of predict's body, or with one argument per line when it is too long."""
    one = f"{head}({', '.join(args)}){tail}"
    if len(one) <= width or not args:
        return [one]
    return [f"{head}(", *[f"    {arg}," for arg in args], f"){tail}"]


def render(plan: AppPlan) -> str:
    """The app file's text. It always compiles; a plan that would not is a bug in the importer."""
    plan.need("gpuserve")
    closing = "\n" if "\n" in plan.summary else ""
    head = f'{_header(plan)}\n"""{_docstring(plan.summary)}{closing}"""\n\n{_imports(plan.imports)}'
    text = "\n\n\n".join([head, *(block.strip("\n") for block in plan.blocks), _model(plan)]) + "\n"
    compile(text, "app.py", "exec")
    return text


def write(path: Path, text: str, *, force: bool = False) -> None:
    """Write the app; an existing file is replaced only when gpuserve import wrote it (or force says so)."""
    if path.exists() and not force:
        try:
            first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        except (OSError, UnicodeDecodeError):
            first = ""
        if not first.startswith(MARK):
            raise BuildError(
                "gpuserve import",
                [
                    Problem(
                        field="-o",
                        value=str(path),
                        message="exists and was not written by gpuserve import",
                        allowed="a new file, or one an earlier gpuserve import wrote",
                        hint="choose another -o, or pass --force to replace it",
                    )
                ],
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _header(plan: AppPlan) -> str:
    lines = [f"{MARK}` (gpuserve {__version__}), in this directory:", f"#   {plan.command}", "#"]
    for line in plan.report.lines():
        indent = "#       " if line.startswith("  - ") else "#   "
        lines += textwrap.wrap(line, 118, initial_indent="# ", subsequent_indent=indent, break_on_hyphens=False)
    return "\n".join(lines)


def _docstring(text: str) -> str:
    paragraphs = [textwrap.fill(p, 116, break_on_hyphens=False) for p in text.split("\n\n")]
    return "\n\n".join(paragraphs).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _imports(imports: set[tuple[str, str]]) -> str:
    groups: list[list[str]] = [[], [], []]
    modules = sorted({module for module, name in imports if not name})
    froms: dict[str, list[str]] = {}
    for module, name in sorted(imports):
        if name:
            froms.setdefault(module, []).append(name)
    for module in modules:
        groups[_group(module)].append(f"import {module}")
    for module, names in sorted(froms.items()):
        groups[_group(module)].append(f"from {module} import {', '.join(sorted(set(names)))}")
    return "\n\n".join("\n".join(sorted(group, key=_import_order)) for group in groups if group)


def _import_order(line: str) -> tuple[int, str]:
    return (1 if line.startswith("from ") else 0, line.split()[1])


def _group(module: str) -> int:
    top = module.split(".")[0]
    return 2 if top in _FIRST_PARTY else 1 if top in _THIRD_PARTY else 0


def _model(plan: AppPlan) -> str:
    lines = ["@gpuserve.model(", f"    name={literal(plan.name)},"]
    if plan.gpu:
        lines.append(f"    gpu={literal(plan.gpu)},")
    if plan.concurrency != 1:
        lines.append(f"    concurrency={plan.concurrency},")
    lines += _image(plan)
    lines += [")", f"class {plan.class_name}:"]
    setup = "async def" if plan.setup_async else "def"
    lines += [
        f"    {setup} setup(self) -> None:",
        *[f"        {line}" if line else "" for line in plan.setup_lines],
        "",
    ]
    predict = "async def" if plan.predict_async else "def"
    params: list[str] = []
    after_default = False
    for param in plan.params:
        params.append(param.declaration(after_default))
        after_default = after_default or not param.required or bool(param.field_args)
    one = f"    {predict} predict(self, {', '.join(params)}) -> {plan.returns}:"
    if len(one) <= 120:
        lines.append(one)
    else:
        lines += [
            f"    {predict} predict(",
            "        self,",
            *[f"        {p}," for p in params],
            f"    ) -> {plan.returns}:",
        ]
    lines += [f"        {line}" if line else "" for line in plan.predict_lines]
    return "\n".join(lines)


def _image(plan: AppPlan) -> list[str]:
    """`image=gpuserve.Image(...)` with one builder call per kind, each on its own lines when long."""
    calls: list[tuple[str, list[str]]] = []
    if plan.pip:
        calls.append(("pip_install", [literal(p) for p in plan.pip]))
    if plan.apt:
        calls.append(("apt_install", [literal(p) for p in plan.apt]))
    if plan.env:
        plain = all(k.isidentifier() and not keyword.iskeyword(k) for k in plan.env)
        calls.append(
            ("env", [f"{k}={literal(v)}" for k, v in plan.env.items()] if plain else [f"**{literal(plan.env)}"])
        )
    head = f"    image=gpuserve.Image(python={literal(plan.python)})"
    one = head + "".join(f".{name}({', '.join(args)})" for name, args in calls) + ","
    if len(one) <= 120:
        return [one]
    lines = [head]
    for name, args in calls:
        call = f"    .{name}({', '.join(args)})"
        lines += [call] if len(call) <= 120 else [f"    .{name}(", *[f"        {arg}," for arg in args], "    )"]
    lines[-1] += ","
    return lines

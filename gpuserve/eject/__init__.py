"""`gpuserve eject`: the model as plain code for one platform, with no trace of gpuserve, for teams that leave.

The user's module is copied without `import gpuserve` and the `@gpuserve.model` decorator (`source`); an entry
point in the platform's own idiom creates the class, runs `setup()`, checks each input with the model's pydantic
input written out (`entry`), and calls `predict()` (`targets`). The target's own build is rendered first, so a
spec the platform cannot take is refused as `gpuserve build` refuses it.
"""

from __future__ import annotations

import ast
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..adapters import get_target
from ..adapters._common import weight_copies
from ..errors import BuildError, Problem
from ..files import holds_file
from ..loader import LoadedApp
from .entry import entry_input
from .source import references, rewrite
from .targets import context, files

TARGETS = ("runpod", "cog", "modal", "docker")


@dataclass(frozen=True)
class EjectResult:
    target: str
    directory: Path
    files: tuple[str, ...]
    notes: tuple[str, ...]


def eject(app: LoadedApp, target: str, out: str | Path) -> EjectResult:
    """Write app for target into out (a new or empty directory), or raise BuildError naming every problem."""
    subject = f"gpuserve eject --target {target}"
    rendered = get_target(target).render(app)  # what the platform cannot take is refused here, as by build
    code, translated, problems = _code(app)
    entry = None
    if app.source is not None:
        module_file = Path(sys.modules[app.cls.__module__].__file__ or "")
        text = module_file.read_text(encoding="utf-8")
        entry, found = entry_input(app, ast.parse(text), text, module_file.name)
        problems += found
    else:
        problems.append(
            Problem(
                field="APP",
                value=app.entry,
                message="has no source file to copy",
                allowed="a model defined in a .py file or a package",
                hint="eject from the file that defines the class",
            )
        )
    if problems or entry is None:
        raise BuildError(subject, problems)
    ctx = context(app, target, entry, rendered, translated)
    written = files(ctx, target, rendered) | code
    directory = _write(Path(out), written, weight_copies(app), subject)
    return EjectResult(target, directory, tuple(sorted([*written, *weight_copies(app)])), ctx.notes)


def _code(app: LoadedApp) -> tuple[dict[str, str], tuple[str, ...], list[Problem]]:
    """The user's module (or every module of its package), rewritten; what was translated; what was refused."""
    problems: list[Problem] = []
    source = app.source
    if source is None:
        return {}, (), _file_problems(app)
    if source.is_file():
        paths = {f"{app.top_level}.py": source}
    else:
        found = sorted(p for p in source.rglob("*.py") if "__pycache__" not in p.parts)
        paths = {f"{app.top_level}/{p.relative_to(source)}": p for p in found}
    module = sys.modules.get(app.cls.__module__)
    code: dict[str, str] = {}
    translated: list[str] = []
    for rel, path in paths.items():
        done = rewrite(path.read_text(encoding="utf-8"), module, tuple(app.spec.weights), rel)
        problems += done.problems
        translated += done.translated
        code[rel] = done.text
        if not done.problems:
            left = [f"line {line}: {name}" for line, name in references(done.text)]
            if left:  # a use of gpuserve the rewrite did not see: never write it out
                problems.append(
                    Problem(rel, ", ".join(left), "still refers to gpuserve", hint="remove those uses, then eject")
                )
    said_files = any(p.value in ("gpuserve.File", "gpuserve.FileLimits") for p in problems)
    return code, tuple(sorted(set(translated))), ([] if said_files else _file_problems(app)) + problems


def _file_problems(app: LoadedApp) -> list[Problem]:
    """Files reach predict through gpuserve's runtime, whether written gpuserve.File or pathlib.Path."""
    signature = app.signature
    return [
        Problem(
            field=f"{app.cls.__name__}.predict {side}",
            value="a file (gpuserve.File, or pathlib.Path in predict's annotations)",
            message="files are fetched and delivered by gpuserve's runtime (URLs, data: URIs, uploads, within "
            "FileLimits), and each platform moves files its own way, so the ejected code cannot take or return "
            "them as they are",
            allowed="str, int, float, bool, lists, dicts and pydantic models of these",
            hint="take a URL or base64 string and fetch or decode it in predict (return one likewise), then eject "
            "again",
        )
        for side, annotation in (("input", signature.input_model), ("output", signature.output_type))
        if holds_file(annotation)
    ]


def _write(out: Path, text_files: dict[str, str], copies: dict[str, Path], subject: str) -> Path:
    """All of it, or nothing: written beside out, then moved into place."""
    out = out.resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        problem = Problem(
            field="-o",
            value=str(out),
            message="exists and is not empty",
            allowed="a new or empty directory",
            hint="choose another -o, or empty it",
        )
        raise BuildError(subject, [problem])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for rel, text in text_files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_text(text, encoding="utf-8")
        for rel, source in copies.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staging / rel)
        staging.chmod(0o755)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


__all__ = ["TARGETS", "EjectResult", "eject"]

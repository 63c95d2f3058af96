"""load -> adapter.render -> write the directory atomically (all of it, or nothing)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .adapters import get_target
from .errors import BuildError, Problem
from .loader import LoadedApp, load_app

MARKER = ".gpuserve-build"


@dataclass(frozen=True)
class BuildResult:
    target: str
    directory: Path
    files: tuple[str, ...]
    notes: tuple[str, ...]


def build(app: str | LoadedApp, target: str, out_dir: str | Path) -> BuildResult:
    """Render APP for target into out_dir, replacing an earlier gpuserve build there."""
    loaded = load_app(app) if isinstance(app, str) else app
    rendered = get_target(target).render(loaded)
    clashes = sorted(set(rendered.files) & set(rendered.copies))
    if clashes:
        problems = [
            Problem(
                field=name,
                value=str(rendered.copies[name]),
                message=f"is a file of the {target} target too: the build would replace one with the other",
                allowed=f"module names other than {', '.join(sorted(rendered.files))}",
                hint=f"rename {name} (and its imports), or build another target",
            )
            for name in clashes
        ]
        raise BuildError("gpuserve build", problems)
    out = Path(out_dir).resolve()
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        problem = Problem(
            field="-o",
            value=str(out),
            message="exists and was not written by gpuserve build",
            allowed="an empty or new directory, or an earlier gpuserve build",
            hint="choose another -o, or empty it",
        )
        raise BuildError("gpuserve build", [problem])
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for rel, text in rendered.files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for rel, source in rendered.copies.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, path)
        (staging / MARKER).write_text(f"{target}\n", encoding="utf-8")
        staging.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    written = tuple(sorted([*rendered.files, *rendered.copies]))
    return BuildResult(target, out, written, rendered.notes)

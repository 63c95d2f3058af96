"""What both importers decide the same way: the model's name, where app.py goes, requirements, the image, the GPU."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import Problem, SpecError
from ..gpus import parse_gpu
from ..options import guidance
from ..spec import Image, ModelSpec
from .pysource import failed
from .report import Report
from .writer import AppPlan

_NAME_RUN = re.compile(r"[^a-z0-9]+")
# What a project that asks for a GPU without naming one (cog's `gpu: true`, a CUDA base image) gets without --gpu:
# offered by Modal, RunPod and Replicate alike.
DEFAULT_GPU = "L40S"


def model_name(explicit: str | None, candidates: list[str], report: Report) -> str:
    """--name as given, else the first candidate (the project's own name) made into a gpuserve name."""
    if explicit:
        _check(explicit)
        return explicit
    for candidate in candidates:
        name = _NAME_RUN.sub("-", candidate.lower()).strip("-")[:48].strip("-")
        if name:
            if name != candidate:
                report.decide("name", candidate, f"the model is named {name!r} (--name chooses)")
            return name
    report.decide("name", None, "the project names nothing usable: the model is named 'model' (--name chooses)")
    return "model"


def _check(name: str) -> None:
    try:
        ModelSpec(name=name, class_name="Model")
    except Exception:
        raise SpecError(
            "gpuserve import",
            [
                Problem(
                    field="--name",
                    value=name,
                    message="is not a model name",
                    allowed="1-48 characters of a-z, 0-9 and '-', not starting or ending with '-'",
                    hint="e.g. --name text-tool",
                )
            ],
        ) from None


def check_out(out: Path | None, root: Path, module_path: Path, default: str) -> Path:
    """Where app.py goes: in `root`, the directory the user's module is imported from, so the app imports it."""
    path = (root / default) if out is None else out.resolve()
    if path.parent != root:
        raise failed(
            "gpuserve import",
            "-o",
            str(out),
            f"is not in {root}, where the app imports {module_path.name} from",
            hint=f"write it there, e.g. -o {root / path.name}",
        )
    if path.suffix != ".py" or not path.stem.isidentifier():
        raise failed("gpuserve import", "-o", str(out), "is not a Python module name", hint="e.g. -o app.py")
    if path == module_path or path.stem == module_path.stem:
        raise failed(
            "gpuserve import",
            "-o",
            str(out or path.name),
            f"would take the name of the module it imports ({module_path.name})",
            hint="choose another -o, e.g. -o gpuserve_app.py",
        )
    return path


def read_requirements(path: Path, report: Report, seen: set[Path] | None = None) -> list[tuple[str, str]]:
    """(where, line) for each requirement of a requirements file, following -r; options are reported."""
    seen = seen if seen is not None else set()
    if path.resolve() in seen:
        return []
    seen.add(path.resolve())
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        report.skip(str(path.name), None, f"cannot be read ({exc.strerror or exc}): its packages are not carried")
        return []
    found: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        where = f"{path.name}:{number}"
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            found += read_requirements(path.parent / line.split(None, 1)[1], report, seen)
        elif line.startswith("-"):
            report.skip(where, line, "pip options are not carried: gpuserve images install from PyPI")
        else:
            found.append((where, line))
    return found


def image_entries(
    *,
    pip: list[tuple[str, str]],
    apt: list[tuple[str, str]],
    env: list[tuple[str, str, str]],
    plan: AppPlan,
    report: Report,
) -> list[str]:
    """Add each pip, apt and env entry gpuserve.Image accepts to the plan; report the others with Image's reason."""
    added: list[str] = []
    for where, line in pip:
        if _accepted(where, line, report, pip=(line,)):
            plan.pip.append(line)
            added.append(line)
    for where, name in apt:
        if _accepted(where, name, report, apt=(name,)):
            plan.apt.append(name)
    for where, key, value in env:
        if "$" in value:
            report.skip(where, f"{key}={value}", "refers to another variable, which gpuserve's image does not expand")
        elif _accepted(where, f"{key}={value}", report, env_vars=((key, value),)):
            plan.env[key] = value
    return added


def _accepted(where: str, value: str, report: Report, **image: tuple[object, ...]) -> bool:
    try:
        Image(**image)
    except SpecError as exc:
        report.skip(where, value, "; ".join(p.message for p in exc.problems))
        return False
    return True


def resolve_gpu(gpu: str | None, *, wanted: bool, default: str) -> str | None:
    """--gpu when given (checked), else the default where the project asks for a GPU, else None (CPU)."""
    if gpu is None:
        return default if wanted else None
    try:
        parse_gpu(gpu)
    except ValueError as exc:
        allowed, hint = guidance(ModelSpec, "gpu")
        raise SpecError(
            "gpuserve import", [Problem(field="--gpu", value=gpu, message=str(exc), allowed=allowed, hint=hint)]
        ) from None
    return gpu

"""What every target's directory shares: the user's code, gpuserve's runtime, pinned requirements, base images."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .. import __version__
from ..cuda import Cuda, choose_cuda
from ..errors import Problem
from ..files import holds_file
from ..loader import LoadedApp
from ..spec import ModelSpec
from ..weights import Local
from .base import Carried, setting

PACKAGE_DIR = Path(__file__).resolve().parent.parent

# The runtime that runs inside containers: the spec side of gpuserve and runtime/, nothing else.
RUNTIME_MODULES: tuple[str, ...] = (
    "__init__.py",
    "py.typed",
    "errors.py",
    "options.py",
    "gpus.py",
    "spec.py",
    "decorator.py",
    "signature.py",
    "loader.py",
    "weights.py",
    "files.py",
)

# Versions the generated directories are tested with (tests install exactly these).
PINS: dict[str, str] = {
    "pydantic": "2.14.3",
    "packaging": "26.3",
    "fastapi": "0.165.0",
    "uvicorn": "0.54.0",
    "uvloop": "0.23.0",
    "httptools": "0.9.0",
    "runpod": "1.12.0",
    "cog": "0.23.1",
    "modal": "1.6.4",
    "huggingface_hub": "2.4.0",
    "filelock": "4.3.1",
    "prometheus_client": "0.26.0",
    "python-multipart": "0.0.34",
    "httpx": "0.28.1",
    "boto3": "1.44.8",
}
# What the runtime needs besides the server for models with files: httpx fetches inputs and PUTs outputs;
# boto3 uploads outputs to S3 (GPUSERVE_OUTPUT_S3), only where predict returns files.
FILES_PACKAGES = ("httpx",)
OUTPUT_FILES_PACKAGES = ("boto3",)
# What the runtime needs besides the server to fetch weights (only rendered for models that declare some).
WEIGHTS_PACKAGES = ("huggingface_hub", "filelock")
# Where image builds put bake=True weights, and the environment that tells the runtime to look there.
BAKED_DIR = "/opt/gpuserve/weights"
# uvloop and httptools: what uvicorn serves fastest on (docs/benchmarks.md), as `uvicorn[standard]` would bring.
SERVER_PACKAGES = (
    "pydantic",
    "packaging",
    "fastapi",
    "uvicorn",
    "uvloop",
    "httptools",
    "prometheus_client",
    "python-multipart",
)

UV_IMAGE = "ghcr.io/astral-sh/uv:0.8.14"
CACHE_DIR = "/cache"


_JSON_TO_PYTHON = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}


def limits_summary(spec: ModelSpec, *, connections: bool = True) -> str:
    """The HTTP server's limits as one table value (connections: the ones uvicorn enforces, where it serves)."""
    limits = spec.limits
    said = [
        f"body {limits.max_body_bytes} B (413)",
        f"queue {limits.queue_for(spec.concurrency)} (503)",
        f"body read {limits.read_timeout} s (408)",
    ]
    if connections:
        said += [
            f"headers {limits.max_header_bytes} B",
            f"keep-alive {limits.keep_alive} s",
            f"connections {limits.max_connections}",
        ]
    return ", ".join(said)


def python_type(schema: dict[str, Any]) -> str | None:
    """The Python scalar a JSON schema describes (str, int, float, bool; Literal choices by their values), or None."""
    if "enum" in schema and "type" not in schema:
        kinds = {type(v) for v in schema["enum"]}
        return "str" if kinds == {str} else "int" if kinds == {int} else None
    return _JSON_TO_PYTHON.get(schema.get("type", ""))


def runtime_copies() -> dict[str, Path]:
    """gpuserve's runtime files, copied into the build so the container needs no unpublished package."""
    copies = {f"gpuserve/{name}": PACKAGE_DIR / name for name in RUNTIME_MODULES}
    for path in sorted((PACKAGE_DIR / "runtime").glob("*.py")):
        copies[f"gpuserve/runtime/{path.name}"] = path
    return copies


def local_modules(app: LoadedApp) -> list[Path]:
    """The modules beside a single-file app that it imports, and those they import in turn: a file (`predict.py`)
    or a folder of .py files. An app written by `gpuserve import` wraps such a module (a cog runner, a RunPod
    handler), so it must travel with the app."""
    if app.source is None or not app.source.is_file():
        return []
    base = app.source.parent
    found: dict[str, Path] = {}
    todo = [app.source]
    while todo:
        path = todo.pop()
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
        for file in files:
            try:
                tree = ast.parse(file.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, UnicodeDecodeError):
                continue
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in found or top in (app.top_level, "gpuserve"):
                        continue
                    module = base / f"{top}.py"
                    package = base / top
                    if module.is_file():
                        found[top] = module
                    elif package.is_dir() and any(package.rglob("*.py")):
                        found[top] = package
                    else:
                        continue
                    todo.append(found[top])
    return [found[name] for name in sorted(found)]


def code_copies(app: LoadedApp) -> dict[str, Path]:
    """The user's module (a file, or a whole package directory of .py files), with the local modules it imports."""
    source = app.source
    if source is None:
        return {}
    if source.is_file():
        copies = {f"{app.top_level}.py": source}
        for module in local_modules(app):
            if module.is_file():
                copies[module.name] = module
            else:
                copies |= {
                    f"{module.name}/{path.relative_to(module)}": path
                    for path in sorted(module.rglob("*.py"))
                    if "__pycache__" not in path.parts
                }
        return copies | weight_copies(app)
    return {
        f"{app.top_level}/{path.relative_to(source)}": path
        for path in sorted(source.rglob("*.py"))
        if "__pycache__" not in path.parts
    } | weight_copies(app)


def code_paths(app: LoadedApp) -> list[str]:
    """Top-level names to COPY for the user's code (and the local modules it imports), then its Local weight folders."""
    return module_paths(app) + [f"{path}/" for path in local_weights(app)]


def module_paths(app: LoadedApp) -> list[str]:
    """Top-level names of the user's code and the local modules it imports."""
    code = [f"{app.top_level}/"] if app.source is not None and app.source.is_dir() else [f"{app.top_level}.py"]
    return code + [f"{m.name}/" if m.is_dir() else m.name for m in local_modules(app)]


def code_modules(app: LoadedApp) -> tuple[str, ...]:
    """The top-level module names of the user's code: the app's, then the local modules it imports."""
    return (app.top_level, *(m.stem if m.is_file() else m.name for m in local_modules(app)))


def local_weights(app: LoadedApp) -> list[str]:
    """The Local weight folders, relative to the code's directory (copied beside the code)."""
    return [w.id for w in app.spec.weights if isinstance(w, Local)]


def weight_copies(app: LoadedApp) -> dict[str, Path]:
    """Every file of the Local weight folders, at the same relative path in the build."""
    if app.source is None:
        return {}
    base = app.source if app.source.is_dir() else app.source.parent
    copies: dict[str, Path] = {}
    for rel in local_weights(app):
        folder = base / rel
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                copies[f"{rel}/{path.relative_to(folder)}"] = path
    return copies


def bake_command(app: LoadedApp, into: str = BAKED_DIR) -> tuple[str, ...]:
    """The build step that puts bake=True weights in the image, or () when none is baked."""
    if not any(getattr(w, "bake", False) for w in app.spec.weights):
        return ()
    return ("python", "-m", "gpuserve.runtime.weights", app.entry, "--into", into)


def requirements(app: LoadedApp, ours: tuple[str, ...]) -> list[str]:
    """Pinned requirement lines: gpuserve's own needs, then the user's. A user's line for the same package wins."""
    user = list(app.spec.image.pip)
    user_names = {canonicalize_name(Requirement(line).name) for line in user}
    signature = app.signature
    files_out = holds_file(signature.output_type)
    needed = ours + (WEIGHTS_PACKAGES if app.spec.weights else ())
    needed += FILES_PACKAGES if files_out or holds_file(signature.input_model) else ()
    needed += OUTPUT_FILES_PACKAGES if files_out else ()
    lines = [f"{name}=={PINS[name]}" for name in needed if canonicalize_name(name) not in user_names]
    return lines + user


@dataclass(frozen=True)
class BaseImage:
    """The FROM line, how Python arrives in it, and what the image already has."""

    image: str
    cuda: Cuda | None
    has_uid_1000: bool  # Ubuntu 24.04 images ship user `ubuntu` with uid 1000: `useradd --uid 1000` fails there
    reason: str = ""  # why this CUDA
    note: str = ""  # what could not be decided (an unknown torch's CUDA)

    @property
    def create_user(self) -> bool:
        return not self.has_uid_1000


def base_image(spec: ModelSpec) -> BaseImage:
    """python slim for CPU models; for GPU models the CUDA runtime the GPUs and the pinned torch need."""
    if spec.gpu is None:
        return BaseImage(f"python:{spec.image.python}-slim-bookworm", cuda=None, has_uid_1000=False)
    choice = choose_cuda(spec.gpu, spec.image.pip)
    return BaseImage(
        choice.cuda.image,
        cuda=choice.cuda,
        has_uid_1000=choice.cuda.ubuntu == "24.04",
        reason=choice.reason,
        note=choice.note,
    )


def header(app: LoadedApp, target: str) -> str:
    """The provenance line written at the top of rendered files."""
    return f"Rendered by gpuserve {__version__} from {app.entry} (target: {target}). Edit the model, then rebuild."


@dataclass(frozen=True)
class DockerfileContext:
    """The parts of a Dockerfile every Dockerfile-based target shares (templates/_shared)."""

    header: str
    base: BaseImage
    python: str
    uv_image: str
    apt: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    code: tuple[str, ...]
    compiled: tuple[str, ...]  # the model's Python, compiled to bytecode as the image is built (gpuserve's is too)
    cache_dir: str
    bake: tuple[str, ...]  # the build step for bake=True weights, or ()

    @classmethod
    def from_app(
        cls, app: LoadedApp, target: str, cache_dir: str = CACHE_DIR, env: tuple[tuple[str, str], ...] = ()
    ) -> DockerfileContext:
        image = app.spec.image
        bake = bake_command(app)
        baked = (("GPUSERVE_WEIGHTS_DIRS", BAKED_DIR),) if bake else ()
        return cls(
            header=header(app, target),
            base=base_image(app.spec),
            python=image.python,
            uv_image=UV_IMAGE,
            apt=image.apt,
            env=image.env_vars + env + baked,
            code=tuple(code_paths(app)),
            compiled=tuple(module_paths(app)),
            cache_dir=cache_dir,
            bake=bake,
        )


def image_options(app: LoadedApp, base: BaseImage, dockerfile: str) -> dict[str, Carried]:
    """How a Dockerfile-based target carries the image fields."""
    image = app.spec.image
    python = "uv-installed CPython in /opt/venv" if base.cuda else base.image
    cuda = f"; the base image's CUDA {base.cuda.version} for {base.reason}" if base.cuda else ""
    return {
        "image.python": setting(f"{dockerfile}: {python}", image.python),
        "image.pip": setting(f"requirements.txt{cuda}", ", ".join(image.pip) or "none"),
        "image.apt": setting(f"{dockerfile} apt-get install", ", ".join(image.apt) or "none"),
        "image.env_vars": setting(f"{dockerfile} ENV", ", ".join(k for k, _ in image.env_vars) or "none"),
    }


def weight_ids(app: LoadedApp) -> str:
    """The weight sources for an option table: ids, baked ones marked."""
    return ", ".join(f"{w.id} (baked)" if getattr(w, "bake", False) else w.id for w in app.spec.weights) or "none"


def open_input_problems(input_schema: dict[str, Any], target: str) -> list[Problem]:
    """Targets whose entry point names each input (cog's run(), Modal's method) cannot take any JSON object."""
    if input_schema.get("additionalProperties", False) is False:
        return []
    return [
        Problem(
            field="predict input",
            value="any JSON object (extra fields allowed)",
            message=f"the {target} target declares each input by name, so inputs it does not name would be lost",
            allowed="an input model whose fields are declared (extra='forbid', gpuserve's default)",
            hint="declare the fields predict reads, or build this model for docker or runpod",
        )
    ]

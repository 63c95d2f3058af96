"""cog: a Replicate project (cog.yaml, a BaseRunner, .cog/openapi_schema.json) and deployment settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..cuda import DEFAULT as DEFAULT_CUDA
from ..cuda import FRAMEWORK_CUDA, pinned
from ..errors import BuildError, Problem
from ..example import example_input
from ..loader import LoadedApp
from ..render import render
from ..weights import URL, HuggingFace
from ._cog_types import CogInput, CogOutput, cog_inputs, cog_output
from ._common import (
    PINS,
    base_image,
    code_copies,
    header,
    open_input_problems,
    requirements,
    runtime_copies,
    weight_ids,
)
from ._gpus import PlatformGpus
from ._openapi_cog import cog_openapi_schema
from .base import Carried, RenderedTarget, batch_option, not_offered, option_notes, runtime, setting

# Replicate's deployment hardware SKUs (GET /v1/hardware). No L4, no A10, no 40 GB A100.
REPLICATE_GPUS = PlatformGpus(
    platform="Replicate",
    target="cog",
    names={"T4": ("gpu-t4",), "L40S": ("gpu-l40s",), "A100-80GB": ("gpu-a100-large",), "H100": ("gpu-h100",)},
    offered=(
        "cpu",
        "gpu-t4",
        "gpu-a40-small",
        "gpu-a40-large",
        "gpu-l40s",
        "gpu-l40s-2x",
        "gpu-a100-large",
        "gpu-a100-large-2x",
        "gpu-h100",
    ),
)
MULTI_GPU = {("gpu-l40s", 2): "gpu-l40s-2x", ("gpu-a100-large", 2): "gpu-a100-large-2x"}


# Names cog refuses in cog.yaml `environment:` ("reserved for internal use"); a trailing * is a prefix.
# From replicate/cog pkg/config/env.go (commit 6110c91, 2026-08-21).
COG_RESERVED_ENV = (
    "PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONUNBUFFERED", "R8_*", "REPLICATE_*",
    "LIBRARY_PATH", "CUDA_*", "NVIDIA_*", "NV_*", "PGET_*", "HF_ENDPOINT", "HF_HUB_ENABLE_HF_TRANSFER", "KUBERNETES_*",
)  # fmt: skip


# torch versions for which `cog build` picks CUDA itself; for any other pin it needs build.cuda.
# From replicate/cog pkg/config/torch_compatibility.json (same commit).
COG_TORCH_VERSIONS = (
    "1.11.0", "1.12.0", "1.12.1", "1.13.0", "1.13.1", "2.0.0", "2.0.1", "2.1.0", "2.1.1", "2.1.2", "2.2.0", "2.2.1",
    "2.2.2", "2.3.0", "2.3.1", "2.4.0", "2.4.1", "2.5.0", "2.5.1", "2.6.0", "2.7.0", "2.7.1", "2.8.0", "2.9.0", "2.9.1",
    "2.10.0", "2.11.0",
)  # fmt: skip


def reserved(name: str) -> bool:
    return any(name.startswith(r[:-1]) if r.endswith("*") else name == r for r in COG_RESERVED_ENV)


# Where cog mounts the weight directories it imports (cog.yaml weights: target).
COG_WEIGHTS_DIR = "/src/gpuserve-weights"


@dataclass(frozen=True)
class CogWeight:
    """One cog.yaml `weights:` entry."""

    name: str
    target: str
    uri: str
    include: tuple[str, ...]


def cog_weights(app: LoadedApp) -> tuple[CogWeight, ...]:
    """Hugging Face and URL weights as cog imports them (hf://org/repo@ref, https://...); Local ones are copied."""
    entries = []
    for source in app.spec.weights:
        if isinstance(source, HuggingFace):
            uri = f"hf://{source.repo_id}" + (f"@{source.revision}" if source.revision else "")
            include = source.allow_patterns or ()
        elif isinstance(source, URL):
            uri, include = source.url, ()
        else:
            continue
        entries.append(CogWeight(source.slug, f"{COG_WEIGHTS_DIR}/{source.slug}", uri, tuple(include)))
    return tuple(entries)


@dataclass(frozen=True)
class CogContext:
    header: str
    name: str
    entry: str
    gpu: bool
    cuda: str
    python: str
    apt: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    weights: tuple[CogWeight, ...]
    concurrency: int
    streaming: bool
    inputs: tuple[CogInput, ...]
    inputs_dict: str
    output: CogOutput
    run_decorators: tuple[str, ...]
    run_def: str
    run_body: tuple[str, ...]
    typing_imports: tuple[str, ...]
    cog_imports: tuple[str, ...]
    requirements: tuple[str, ...]
    cog_version: str
    hardware: str
    example_request_json: str


def _run_method(output: CogOutput, streaming: bool, concurrency: int) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """run()'s decorators, its `def` line start and its body: decided here so the template only lays them out."""
    concurrent = concurrency > 1
    decorators = (f"@concurrent(max={concurrency})",) if concurrent else ()
    call = "await bridge.apredict(inputs)" if concurrent else "bridge.predict(inputs)"
    files = output.annotation.endswith("[Path]") or output.annotation == "Path"  # cog delivers them itself
    chunk = "Path(chunk)" if files else "chunk"
    if streaming and concurrent:
        body: tuple[str, ...] = ("async for chunk in bridge.astream(inputs):", f"    yield {chunk}")
    elif streaming and files:
        body = ("for chunk in bridge.stream(inputs):", f"    yield {chunk}")
    elif streaming:
        body = ("yield from bridge.stream(inputs)",)
    elif output.fields:
        body = (f"return Output(**{call})",)
    elif files:
        body = (f"return Path({call})",)
    else:
        body = (f"return {call}",)
    return decorators, "async def run" if concurrent else "def run", body


class CogTarget:
    name = "cog"

    def options(self, app: LoadedApp) -> dict[str, Carried]:
        spec = app.spec
        hardware, _ = self._hardware(app)
        cuda = _cuda(app)
        unset_max = "unset in the spec; 1 or keep_warm is written" if spec.max_containers is None else ""
        concurrency = f"@concurrent(max={spec.slots}) on run(); `cog build` bakes COG_MAX_CONCURRENCY"
        if spec.batch is not None:
            concurrency += ", (concurrency + 1) * batch.max_size"
        return {
            "name": setting("deployment.json name and model <OWNER>/NAME", spec.name),
            "class_name": runtime("runner.py loads it", app.entry),
            "gpu": setting(
                "cog.yaml build.gpu; deployment.json hardware", f"{str(spec.gpu is not None).lower()}, {hardware}"
            ),
            "image.python": setting("cog.yaml build.python_version", spec.image.python),
            "image.pip": setting(
                "cog.yaml python_requirements" + (f"; build.cuda {cuda}" if cuda else ""),
                ", ".join(spec.image.pip) or "none",
            ),
            "image.apt": setting("cog.yaml build.system_packages", ", ".join(spec.image.apt) or "none"),
            "image.env_vars": setting("cog.yaml environment", ", ".join(k for k, _ in spec.image.env_vars) or "none"),
            "keep_warm": setting("deployment.json min_instances", spec.keep_warm),
            "max_containers": setting(
                "deployment.json max_instances", self._max(spec.keep_warm, spec.max_containers), unset_max
            ),
            "idle_timeout": not_offered("Replicate sets scale-down itself; it is not configurable per deployment"),
            "timeout": not_offered(
                "Replicate has no per-deployment prediction timeout; gpuserve's runtime does not enforce it under cog"
            ),
            "setup_timeout": setting("cog.yaml environment COG_SETUP_TIMEOUT", spec.setup_timeout),
            "weights": setting(
                f"cog.yaml weights: (hf://, https://), mounted at {COG_WEIGHTS_DIR}/<slug>; Local folders are "
                "copied with the code",
                weight_ids(app),
            ),
            "grace": runtime(
                "the runner sees coglet close its listener on SIGTERM and gives predictions this long, then fails "
                "them as retryable",
                f"{spec.grace} s",
            ),
            "spot": not_offered("Replicate chooses the hardware; it sells no spot capacity"),
            "spot_notices": not_offered("Replicate runs the hardware and stops models itself"),
            "concurrency": setting(
                concurrency if spec.slots > 1 else "one prediction at a time (cog's default)", spec.slots
            ),
            "batch": batch_option(spec, "the runner's batcher", "@concurrent(max=N)"),
            "secrets": not_offered(
                "Replicate has no secret store for a model's environment; they are unset at run time"
            ),
            "limits": not_offered("cog's own server (coglet) takes the requests: its limits and queue apply"),
        }

    def render(self, app: LoadedApp) -> RenderedTarget:
        spec, signature = app.spec, app.signature
        problems = [_reserved_problem(key) for key, _ in spec.image.env_vars if reserved(key)] + _torch_problems(app)
        inputs, enums, input_problems = cog_inputs(signature.input_schema())
        input_problems += open_input_problems(signature.input_schema(), "cog")
        if problems or input_problems:
            raise BuildError("gpuserve build --target cog", problems + input_problems)
        concurrent = spec.slots > 1
        output = cog_output(signature.output_schema(), signature.streaming, concurrent)
        hardware, notes = self._hardware(app)
        decorators, run_def, body = _run_method(output, signature.streaming, spec.slots)
        annotations = [i.annotation for i in inputs] + [output.annotation] + [a for _, a in output.fields]
        typing_imports = tuple(
            n
            for n in ("Any", "AsyncIterator", "Iterator", "Optional")
            if any(n in a.replace("ConcatenateIterator", "") for a in annotations)
        )
        optional = tuple(
            n
            for n in ("AsyncConcatenateIterator", "BaseModel", "ConcatenateIterator", "Path", "concurrent")
            if self._uses(n, output, concurrent) or (n == "Path" and any("Path" in a for a in annotations))
        )
        cog_imports = tuple(sorted({"BaseRunner", "Input", *optional}, key=lambda n: (n[0].islower(), n)))
        deployment = {
            "name": spec.name,
            "model": f"<OWNER>/{spec.name}",
            "version": "<VERSION_ID printed by cog push>",
            "hardware": hardware,
            "min_instances": spec.keep_warm,
            "max_instances": self._max(spec.keep_warm, spec.max_containers),
        }
        weights = cog_weights(app)
        ctx = CogContext(
            header=header(app, self.name),
            name=spec.name,
            entry=app.entry,
            gpu=spec.gpu is not None,
            cuda=_cuda(app),
            python=spec.image.python,
            apt=spec.image.apt,
            env=spec.image.env_vars
            + (("COG_SETUP_TIMEOUT", str(spec.setup_timeout)),)
            + ((("GPUSERVE_WEIGHTS_DIRS", COG_WEIGHTS_DIR),) if weights else ()),
            weights=weights,
            concurrency=spec.slots,
            streaming=signature.streaming,
            inputs=tuple(inputs),
            inputs_dict="{" + ", ".join(f"{i.name!r}: {i.name}" for i in inputs) + "}",
            output=output,
            run_decorators=decorators,
            run_def=run_def,
            run_body=body,
            typing_imports=typing_imports,
            cog_imports=cog_imports,
            requirements=tuple(requirements(app, ("pydantic", "packaging"))),
            cog_version=PINS["cog"],
            hardware=hardware,
            example_request_json=json.dumps({"input": example_input(signature.input_schema())}),
        )
        schema: dict[str, Any] = cog_openapi_schema(
            [i.schema | {"name": i.name} for i in inputs], enums, output.schema, signature.streaming
        )
        files = {
            "cog.yaml": render("cog/cog.yaml.j2", ctx),
            "runner.py": render("cog/runner.py.j2", ctx),
            "requirements.txt": render("cog/requirements.txt.j2", ctx),
            ".cog/openapi_schema.json": json.dumps(schema, indent=2) + "\n",
            "deployment.json": json.dumps(deployment, indent=2) + "\n",
            ".dockerignore": render("_shared/dockerignore.j2", ctx),
            "README.md": render("cog/README.md.j2", ctx),
        }
        notes += option_notes(self.options(app), spec)
        base = base_image(spec)
        if base.note:
            notes.append(base.note + "; `cog build` also fails for a torch pin missing from its own table")
        return RenderedTarget(files=files, copies=runtime_copies() | code_copies(app), notes=tuple(notes))

    @staticmethod
    def _max(keep_warm: int, max_containers: int | None) -> int:
        return max_containers if max_containers is not None else max(keep_warm, 1)

    @staticmethod
    def _uses(name: str, output: CogOutput, concurrent: bool) -> bool:
        if name == "BaseModel":
            return bool(output.fields)
        if name == "concurrent":
            return concurrent
        return output.annotation.startswith(f"{name}[")

    @staticmethod
    def _hardware(app: LoadedApp) -> tuple[str, list[str]]:
        gpu = app.spec.gpu
        if gpu is None:
            return "cpu", []
        kept, notes = REPLICATE_GPUS.resolve(gpu)
        name, (sku,) = kept[0]
        if len(kept) > 1:
            notes.append(
                f"Replicate deployments take one hardware type: {name} ({sku}); the fallbacks after it are not used"
            )
        if gpu.count > 1:
            if (sku, gpu.count) not in MULTI_GPU:
                offered = ", ".join(f"{s} x{n} ({v})" for (s, n), v in MULTI_GPU.items())
                problem = Problem(
                    field="gpu",
                    value=f"{sku} x{gpu.count}",
                    message="Replicate has no such multi-GPU hardware",
                    allowed=offered,
                    hint="ask for one GPU, or one of the multi-GPU types listed",
                )
                raise BuildError("gpuserve build --target cog", [problem])
            sku = MULTI_GPU[(sku, gpu.count)]
        return sku, notes


def _cuda(app: LoadedApp) -> str:
    """build.cuda when gpuserve decided the CUDA (a known torch, or GPUs that need it); empty lets cog choose."""
    base = base_image(app.spec)
    return base.cuda.version if base.cuda is not None and base.cuda != DEFAULT_CUDA else ""


def _reserved_problem(key: str) -> Problem:
    return Problem(
        field=f"image.env({key})",
        value=key,
        message="cog reserves this name: `cog build` refuses it in cog.yaml environment",
        allowed="names outside " + ", ".join(COG_RESERVED_ENV),
        hint=f"set it in setup() instead (os.environ[{key!r}] = ...), before importing what reads it",
    )


def _torch_problems(app: LoadedApp) -> list[Problem]:
    """A GPU build with a torch neither cog nor gpuserve can pick CUDA for fails at `cog build`: refuse it here."""
    _, version = pinned(app.spec.image.pip, "torch")
    if app.spec.gpu is None or version is None or version in COG_TORCH_VERSIONS or _cuda(app):
        return []
    known = ", ".join(f"{name}=={v}" for name, v in FRAMEWORK_CUDA)
    return [
        Problem(
            field="image.pip",
            value=f"torch=={version}",
            message="`cog build` needs build.cuda for a torch missing from its table, and gpuserve does not know "
            "which CUDA this torch needs",
            allowed=f"a torch cog knows ({COG_TORCH_VERSIONS[0]} to {COG_TORCH_VERSIONS[-1]}) or one gpuserve maps "
            f"to a CUDA ({known})",
            hint="pin one of those torch versions",
        )
    ]

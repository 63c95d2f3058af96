"""cog: a Replicate project (cog.yaml, a BaseRunner, .cog/openapi_schema.json) and deployment settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import BuildError, Problem
from ..example import example_input
from ..loader import LoadedApp
from ..render import render
from ._cog_types import CogInput, CogOutput, cog_inputs, cog_output
from ._common import code_copies, header, requirements, runtime_copies
from ._gpus import PlatformGpus
from ._openapi_cog import cog_openapi_schema
from .base import RenderedTarget

# Replicate's deployment hardware SKUs (GET /v1/hardware). No L4, no A10G, no 40 GB A100.
REPLICATE_GPUS = PlatformGpus(
    platform="Replicate",
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


@dataclass(frozen=True)
class CogContext:
    header: str
    name: str
    entry: str
    gpu: bool
    python: str
    apt: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    concurrency: int
    is_async: bool
    streaming: bool
    inputs: tuple[CogInput, ...]
    output: CogOutput
    typing_imports: tuple[str, ...]
    cog_imports: tuple[str, ...]
    requirements: tuple[str, ...]
    hardware: str
    deployment_json: str
    example_input_json: str


class CogTarget:
    name = "cog"
    summary = "a Replicate cog project: cog.yaml, a BaseRunner, deployment.json"

    def render(self, app: LoadedApp) -> RenderedTarget:
        spec, signature = app.spec, app.signature
        inputs, enums, problems = cog_inputs(signature.input_schema())
        if problems:
            raise BuildError("gpuserve build --target cog", problems)
        concurrent = spec.concurrency > 1
        output = cog_output(signature.output_schema(), signature.streaming, concurrent)
        hardware, notes = self._hardware(app)
        notes += self._unmapped(app)
        annotations = [i.annotation for i in inputs] + [output.annotation] + [a for _, a in output.fields]
        typing_imports = tuple(
            n
            for n in ("Any", "AsyncIterator", "Iterator", "Optional")
            if any(n in a.replace("ConcatenateIterator", "") for a in annotations)
        )
        optional = tuple(
            n
            for n in ("AsyncConcatenateIterator", "BaseModel", "ConcatenateIterator", "concurrent")
            if self._uses(n, output, concurrent)
        )
        cog_imports = tuple(
            sorted({"BaseRunner", "Input", *optional}, key=lambda n: (n[0].islower(), n))
        )  # classes, then functions
        deployment = {
            "name": spec.name,
            "model": f"<OWNER>/{spec.name}",
            "version": "<VERSION_ID printed by cog push>",
            "hardware": hardware,
            "min_instances": spec.keep_warm,
            "max_instances": spec.max_containers if spec.max_containers is not None else max(spec.keep_warm, 1),
        }
        ctx = CogContext(
            header=header(app, self.name),
            name=spec.name,
            entry=app.entry,
            gpu=spec.gpu is not None,
            python=spec.image.python,
            apt=spec.image.apt,
            env=spec.image.env_vars,
            concurrency=spec.concurrency,
            is_async=concurrent,
            streaming=signature.streaming,
            inputs=tuple(inputs),
            output=output,
            typing_imports=typing_imports,
            cog_imports=cog_imports,
            requirements=tuple(requirements(app, ("pydantic", "packaging"))),
            hardware=hardware,
            deployment_json=json.dumps(deployment, indent=2),
            example_input_json=json.dumps(example_input(signature.input_schema())),
        )
        schema: dict[str, Any] = cog_openapi_schema(
            [i.schema | {"name": i.name} for i in inputs], enums, output.schema, signature.streaming
        )
        files = {
            "cog.yaml": render("cog/cog.yaml.j2", ctx),
            "runner.py": render("cog/runner.py.j2", ctx),
            "requirements.txt": render("cog/requirements.txt.j2", ctx),
            ".cog/openapi_schema.json": json.dumps(schema, indent=2) + "\n",
            "deployment.json": ctx.deployment_json + "\n",
            ".dockerignore": render("docker/dockerignore.j2", ctx),
            "README.md": render("cog/README.md.j2", ctx),
        }
        return RenderedTarget(files=files, copies=runtime_copies() | code_copies(app), notes=tuple(notes))

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
                    "gpu",
                    f"{sku} x{gpu.count}",
                    "Replicate has no such multi-GPU hardware",
                    offered,
                    "ask for one GPU, or one of the multi-GPU types listed",
                )
                raise BuildError("gpuserve build --target cog", [problem])
            sku = MULTI_GPU[(sku, gpu.count)]
        return sku, notes

    @staticmethod
    def _unmapped(app: LoadedApp) -> list[str]:
        spec = app.spec
        notes = [
            f"idle_timeout={spec.idle_timeout}: Replicate sets scale-down itself; it is not configurable per deployment",
            f"timeout={spec.timeout}: Replicate has no per-deployment prediction timeout; gpuserve's runtime does not enforce it under cog",
        ]
        if spec.secrets:
            notes.append(
                f"secrets {', '.join(spec.secrets)}: Replicate has no secret store for a model's environment; they are unset at run time"
            )
        return notes

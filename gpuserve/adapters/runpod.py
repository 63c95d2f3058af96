"""runpod: a serverless worker (Dockerfile + handler.py) and the endpoint settings RunPod's REST API takes."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..example import example_input
from ..loader import LoadedApp
from ..render import render
from ._common import DockerfileContext, code_copies, requirements, runtime_copies
from ._gpus import PlatformGpus
from .base import RenderedTarget

# RunPod's gpuTypeIds (REST API). No T4, no A10G, no 40 GB A100.
RUNPOD_GPUS = PlatformGpus(
    platform="RunPod",
    names={
        "L4": ("NVIDIA L4",),
        "L40S": ("NVIDIA L40S",),
        "A100-80GB": ("NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB"),
        "H100": ("NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H100 NVL"),
        "H200": ("NVIDIA H200",),
        "B200": ("NVIDIA B200",),
    },
    offered=(
        "NVIDIA L4", "NVIDIA L40S", "NVIDIA L40", "NVIDIA A40", "NVIDIA A30", "NVIDIA RTX A4000", "NVIDIA RTX A4500", "NVIDIA RTX A5000",
        "NVIDIA RTX A6000", "NVIDIA GeForce RTX 4090", "NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3",
        "NVIDIA H100 PCIe", "NVIDIA H100 NVL", "NVIDIA H200", "NVIDIA B200",
    ),
)  # fmt: skip

# A RunPod network volume mounts here on serverless workers; without one it is plain container disk.
RUNPOD_CACHE_DIR = "/runpod-volume/gpuserve-cache"


@dataclass(frozen=True)
class RunpodContext:
    dockerfile: DockerfileContext
    name: str
    entry: str
    streaming: bool
    concurrency: int
    requirements: tuple[str, ...]
    endpoint_json: str
    template_json: str
    test_input_json: str
    example_input_json: str
    secrets: tuple[str, ...]
    gpu_note: str

    @property
    def header(self) -> str:
        return self.dockerfile.header


class RunpodTarget:
    name = "runpod"
    summary = "a RunPod serverless worker: Dockerfile, handler.py, endpoint.json"

    def render(self, app: LoadedApp) -> RenderedTarget:
        spec = app.spec
        notes: list[str] = []
        endpoint: dict[str, object] = {"name": spec.name, "templateId": "<TEMPLATE_ID from the template you create>"}
        if spec.gpu is None:
            endpoint["computeType"] = "CPU"
            gpu_note = "CPU workers (the model asks for no GPU)"
        else:
            kept, notes = RUNPOD_GPUS.resolve(spec.gpu)
            endpoint |= {
                "computeType": "GPU",
                "gpuTypeIds": [n for _, names in kept for n in names],
                "gpuCount": spec.gpu.count,
            }
            gpu_note = ", ".join(f"{name} -> {' / '.join(names)}" for name, names in kept)
        endpoint |= {
            "workersMin": spec.keep_warm,
            "workersMax": spec.max_containers if spec.max_containers is not None else max(spec.keep_warm, 3),
            "idleTimeout": spec.idle_timeout,
            "executionTimeoutMs": spec.timeout * 1000,
            "flashboot": True,
            "scalerType": "QUEUE_DELAY",
            "scalerValue": 4,
        }
        secrets_env = {name: f"{{{{ RUNPOD_SECRET_{name} }}}}" for name in spec.secrets}
        if secrets_env:
            endpoint["env"] = secrets_env
        template = {
            "name": spec.name,
            "imageName": f"<REGISTRY>/{spec.name}:latest",
            "isServerless": True,
            "containerDiskInGb": 20 if spec.gpu is None else 40,
            "env": secrets_env,
        }
        example = example_input(app.signature.input_schema())
        ctx = RunpodContext(
            dockerfile=DockerfileContext.from_app(app, self.name, cache_dir=RUNPOD_CACHE_DIR),
            name=spec.name,
            entry=app.entry,
            streaming=app.signature.streaming,
            concurrency=spec.concurrency,
            requirements=tuple(requirements(app, ("runpod", "pydantic", "packaging"))),
            endpoint_json=json.dumps(endpoint, indent=2),
            template_json=json.dumps(template, indent=2),
            test_input_json=json.dumps({"input": example}, indent=2),
            example_input_json=json.dumps({"input": example}),
            secrets=spec.secrets,
            gpu_note=gpu_note,
        )
        files = {
            "Dockerfile": render("runpod/Dockerfile.j2", ctx),
            "handler.py": render("runpod/handler.py.j2", ctx),
            "requirements.txt": render("_shared/requirements.txt.j2", ctx),
            "test_input.json": ctx.test_input_json + "\n",
            "endpoint.json": ctx.endpoint_json + "\n",
            "template.json": ctx.template_json + "\n",
            ".dockerignore": render("docker/dockerignore.j2", ctx),
            "README.md": render("runpod/README.md.j2", ctx),
        }
        return RenderedTarget(files=files, copies=runtime_copies() | code_copies(app), notes=tuple(notes))

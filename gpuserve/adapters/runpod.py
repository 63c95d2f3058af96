"""runpod: a serverless worker (Dockerfile + handler.py) and the endpoint body RunPod's REST API v2 takes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..example import example_input
from ..loader import LoadedApp
from ..render import render
from ..spec import ModelSpec
from ..weights import HuggingFace
from ._common import (
    BAKED_DIR,
    PINS,
    BaseImage,
    DockerfileContext,
    base_image,
    code_copies,
    image_options,
    requirements,
    runtime_copies,
    weight_ids,
)
from ._gpus import PlatformGpus
from .base import Carried, RenderedTarget, batch_option, not_offered, option_notes, runtime, setting

API = "https://api.runpod.io/v2"

# Serverless GPU pools and the GPU types each holds. RunPod's docs disagree on where the L4 sits
# (ADA_24 on one page, AMPERE_24 on another); its own code wins: runpod-flash 1.21.0,
# runpod_flash/core/resources/gpu.py, class GpuGroup.
POOL_TYPES: dict[str, tuple[str, ...]] = {
    "AMPERE_24": ("NVIDIA RTX A5000", "NVIDIA L4", "NVIDIA GeForce RTX 3090"),
    "ADA_48_PRO": ("NVIDIA RTX 6000 Ada Generation", "NVIDIA L40", "NVIDIA L40S"),
    "AMPERE_80": ("NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB"),
    "ADA_80_PRO": ("NVIDIA H100 PCIe", "NVIDIA H100 80GB HBM3", "NVIDIA H100 NVL"),
    "BLACKWELL_96": (
        "NVIDIA RTX PRO 6000 Blackwell Server Edition",
        "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
        "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition",
    ),
    "HOPPER_141": ("NVIDIA H200",),
    "BLACKWELL_180": ("NVIDIA B200",),
}
# gpuserve GPU -> (pool, the types in it that are that GPU). No T4, no A10, no 40 GB A100 on RunPod serverless.
WANTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "L4": ("AMPERE_24", ("NVIDIA L4",)),
    "L40S": ("ADA_48_PRO", ("NVIDIA L40S",)),
    "A100-80GB": ("AMPERE_80", POOL_TYPES["AMPERE_80"]),
    "RTX-PRO-6000": ("BLACKWELL_96", POOL_TYPES["BLACKWELL_96"]),
    "H100": ("ADA_80_PRO", POOL_TYPES["ADA_80_PRO"]),
    "H200": ("HOPPER_141", POOL_TYPES["HOPPER_141"]),
    "B200": ("BLACKWELL_180", POOL_TYPES["BLACKWELL_180"]),
}
RUNPOD_GPUS = PlatformGpus(
    platform="RunPod",
    target="runpod",
    names={gpu: (pool,) for gpu, (pool, _) in WANTED.items()},
    offered=tuple(POOL_TYPES),
)
# A CPU worker: a flavor from GET /v2/catalog/cpus and a power-of-two vCPU count.
CPU_WORKER = {"id": "cpu5c", "vcpuCount": 4}
DEFAULT_MAX_WORKERS = 3
QUEUE_DELAY_SECONDS = 4

# A RunPod network volume mounts here on serverless workers; without one it is plain container disk.
RUNPOD_CACHE_DIR = "/runpod-volume/gpuserve-cache"
# RunPod's cached models: Hugging Face repos it places on hosts, in the hub's cache layout, read-only.
RUNPOD_HF_CACHE = "/runpod-volume/huggingface-cache/hub"


@dataclass(frozen=True)
class RunpodContext:
    dockerfile: DockerfileContext
    name: str
    entry: str
    requirements: tuple[str, ...]
    runpod_version: str
    api: str
    example_request_json: str
    secrets: tuple[str, ...]
    gpu_note: str
    streaming: bool

    @property
    def header(self) -> str:
        return self.dockerfile.header


def _gpu_block(spec: ModelSpec, base: BaseImage) -> tuple[dict[str, Any], str, list[str]]:
    """The endpoint's `gpu` object (pools, the cards excluded from them, count, CUDA floor), a summary, notes."""
    assert spec.gpu is not None and base.cuda is not None
    kept, notes = RUNPOD_GPUS.resolve(spec.gpu)
    pools = [pool for _, (pool,) in kept]
    wanted = {t for name, _ in kept for t in WANTED[name][1]}
    excluded = [t for pool in pools for t in POOL_TYPES[pool] if t not in wanted]
    block: dict[str, Any] = {"pools": pools}
    if excluded:
        block["excludedTypes"] = excluded
    block |= {"count": spec.gpu.count, "minCudaVersion": base.cuda.version}
    summary = ", ".join(f"{name} -> {pool}" for name, (pool,) in kept)
    return block, summary, notes


def endpoint_body(app: LoadedApp) -> tuple[dict[str, Any], str, list[str]]:
    """The body of `POST /v2/serverless` (CreateEndpointRequest), a GPU summary, and notes."""
    spec = app.spec
    body: dict[str, Any] = {"name": spec.name, "type": "QUEUE", "image": f"<REGISTRY>/{spec.name}:latest"}
    notes: list[str] = []
    if spec.gpu is None:
        body["cpu"] = [CPU_WORKER]
        summary = f"CPU workers ({CPU_WORKER['id']}, {CPU_WORKER['vcpuCount']} vCPUs): the model asks for no GPU"
    else:
        body["gpu"], summary, notes = _gpu_block(spec, base_image(spec))
    body |= {
        "workers": {
            "min": spec.keep_warm,
            "max": spec.max_containers if spec.max_containers is not None else max(spec.keep_warm, DEFAULT_MAX_WORKERS),
            "idleTimeout": spec.idle_timeout,
        },
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": QUEUE_DELAY_SECONDS},
        "timeout": spec.timeout * 1000,
        "flashboot": "FLASHBOOT",
        "disk": 20 if spec.gpu is None else 40,
    }
    if spec.secrets:
        body["env"] = {name: f"{{{{ RUNPOD_SECRET_{name} }}}}" for name in spec.secrets}
    return body, summary, notes


class RunpodTarget:
    name = "runpod"

    def options(self, app: LoadedApp) -> dict[str, Carried]:
        spec = app.spec
        body, _, _ = endpoint_body(app)
        workers = body["workers"]
        if spec.gpu is None:
            gpu = setting("endpoint.json cpu", json.dumps(body["cpu"]))
        else:
            gpu = setting("endpoint.json gpu (pools, excludedTypes, count, minCudaVersion)", json.dumps(body["gpu"]))
        unset_max = (
            f"unset in the spec; RunPod's default of {DEFAULT_MAX_WORKERS} is written"
            if spec.max_containers is None
            else ""
        )
        return {
            "name": setting("endpoint.json name", spec.name),
            "class_name": runtime("handler.py loads it", app.entry),
            "gpu": gpu,
            **image_options(app, base_image(spec), "Dockerfile"),
            "keep_warm": setting("endpoint.json workers.min", workers["min"]),
            "max_containers": setting("endpoint.json workers.max", workers["max"], note=unset_max),
            "idle_timeout": setting("endpoint.json workers.idleTimeout", workers["idleTimeout"]),
            "timeout": setting("endpoint.json timeout (ms)", body["timeout"]),
            "setup_timeout": not_offered(
                "RunPod has no start-up limit for serverless workers: a worker that never gets ready "
                "leaves its jobs queued; watch the endpoint's worker logs"
            ),
            "weights": setting(
                "fetched before setup(): RunPod's cached models (/runpod-volume/huggingface-cache/hub) when the "
                f"model is there, else {RUNPOD_CACHE_DIR} (a network volume when one is mounted, container disk "
                f"otherwise); bake=True ones at docker build into {BAKED_DIR}",
                weight_ids(app),
            ),
            "grace": runtime(
                "handler.py wraps RunPod's SIGTERM handler: jobs in flight get this long, then end as a "
                "retryable error",
                f"{spec.grace} s",
            ),
            "spot": not_offered("RunPod Serverless chooses its own capacity; it sells no spot workers"),
            "spot_notices": not_offered("RunPod stops workers with SIGTERM; there is no cloud notice to watch"),
            "concurrency": setting(
                "handler.py concurrency_modifier" + (", (concurrency + 1) * batch.max_size" if spec.batch else ""),
                spec.slots,
            ),
            "batch": batch_option(spec, "handler.py's batcher", "concurrency_modifier"),
            "secrets": setting("endpoint.json env ({{ RUNPOD_SECRET_NAME }})", ", ".join(spec.secrets) or "none"),
            "limits": not_offered(
                "RunPod's API takes the requests and queues the jobs before the worker sees them: "
                "its own payload limits and queue apply"
            ),
        }

    def render(self, app: LoadedApp) -> RenderedTarget:
        spec = app.spec
        body, summary, notes = endpoint_body(app)
        hub = (
            (("GPUSERVE_HF_CACHES", RUNPOD_HF_CACHE),) if any(isinstance(w, HuggingFace) for w in spec.weights) else ()
        )
        dockerfile = DockerfileContext.from_app(app, self.name, cache_dir=RUNPOD_CACHE_DIR, env=hub)
        request = {"input": example_input(app.signature.input_schema())}
        ctx = RunpodContext(
            dockerfile=dockerfile,
            name=spec.name,
            entry=app.entry,
            requirements=tuple(requirements(app, ("runpod", "pydantic", "packaging"))),
            runpod_version=PINS["runpod"],
            api=API,
            example_request_json=json.dumps(request),
            secrets=spec.secrets,
            gpu_note=summary,
            streaming=app.signature.streaming,
        )
        files = {
            "Dockerfile": render("runpod/Dockerfile.j2", ctx),
            "handler.py": render("runpod/handler.py.j2", ctx),
            "requirements.txt": render("_shared/requirements.txt.j2", ctx),
            "test_input.json": json.dumps(request, indent=2) + "\n",
            "endpoint.json": json.dumps(body, indent=2) + "\n",
            ".dockerignore": render("_shared/dockerignore.j2", ctx),
            "README.md": render("runpod/README.md.j2", ctx),
        }
        notes += option_notes(self.options(app), spec) + ([dockerfile.base.note] if dockerfile.base.note else [])
        return RenderedTarget(files=files, copies=runtime_copies() | code_copies(app), notes=tuple(notes))

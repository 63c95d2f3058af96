"""docker: a plain image serving the gpuserve HTTP contract, for Kubernetes or any VM."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..example import example_input
from ..loader import LoadedApp
from ..render import render
from ._common import (
    BAKED_DIR,
    CACHE_DIR,
    SERVER_PACKAGES,
    DockerfileContext,
    base_image,
    code_copies,
    image_options,
    limits_summary,
    requirements,
    runtime_copies,
    weight_ids,
)
from .base import Carried, RenderedTarget, batch_option, not_offered, option_notes, runtime, setting

PORT = 8000
# Seconds past the grace for closing connections and shutdown(): what `docker stop` must wait before SIGKILL.
STOP_MARGIN = 10
HEALTH_INTERVAL = 10


@dataclass(frozen=True)
class DockerContext:
    dockerfile: DockerfileContext
    name: str
    port: int
    gpu: str
    driver: str  # the NVIDIA driver the host needs, for GPU models
    secrets: tuple[str, ...]
    grace: int
    stop_timeout: int
    start_period: int
    interval: int
    requirements: tuple[str, ...]
    command: tuple[str, ...]
    healthcheck: tuple[str, ...]
    example_request_json: str

    @property
    def header(self) -> str:
        return self.dockerfile.header


class DockerTarget:
    name = "docker"

    def options(self, app: LoadedApp) -> dict[str, Carried]:
        spec = app.spec
        base = base_image(spec)
        scaling = "a plain image has no autoscaler; run replicas with your orchestrator (Kubernetes, Nomad, a VM group)"
        return {
            "name": setting("image tag in README.md (`docker build -t`)", spec.name),
            "class_name": runtime("CMD `python -m gpuserve.runtime` loads it", app.entry),
            "gpu": setting("base image; `docker run --gpus all`", base.image)
            if spec.gpu
            else setting("base image", base.image),
            **image_options(app, base, "Dockerfile"),
            "keep_warm": not_offered(scaling),
            "max_containers": not_offered(scaling),
            "idle_timeout": not_offered(scaling),
            "timeout": runtime("the server answers 504 past it", f"{spec.timeout} s"),
            "setup_timeout": setting("HEALTHCHECK --start-period", f"{spec.setup_timeout}s"),
            "weights": setting(
                f"fetched before setup() into GPUSERVE_CACHE_DIR={CACHE_DIR} (mount a volume there); "
                f"bake=True ones at docker build into {BAKED_DIR}",
                weight_ids(app),
            ),
            "grace": runtime(
                "the server drains on SIGTERM for this long; README's `docker run --stop-timeout` allows for it",
                f"{spec.grace} s",
            ),
            "spot": not_offered("a plain image runs where you start it: ask your orchestrator for spot nodes"),
            "spot_notices": runtime(
                "the server watches the cloud's spot notice and drains before SIGTERM", spec.spot_notices
            ),
            "concurrency": runtime("the server runs this many predicts at once and queues the rest", spec.concurrency),
            "batch": batch_option(spec, "the server's batcher", "its admission gate"),
            "secrets": setting("`docker run -e NAME` at run time", ", ".join(spec.secrets) or "none"),
            "limits": runtime(
                "the server answers past them; uvicorn holds headers, keep-alive and connections to them",
                limits_summary(spec),
            ),
        }

    def render(self, app: LoadedApp) -> RenderedTarget:
        spec = app.spec
        options = self.options(app)
        probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/health', timeout=4)"
        dockerfile = DockerfileContext.from_app(app, self.name)
        ctx = DockerContext(
            dockerfile=dockerfile,
            name=spec.name,
            port=PORT,
            gpu=str(spec.gpu) if spec.gpu else "",
            driver=f"{dockerfile.base.cuda.min_driver} (CUDA {dockerfile.base.cuda.version})"
            if dockerfile.base.cuda
            else "",
            secrets=spec.secrets,
            grace=spec.grace,
            stop_timeout=spec.grace + STOP_MARGIN,
            start_period=spec.setup_timeout,
            interval=HEALTH_INTERVAL,
            requirements=tuple(requirements(app, SERVER_PACKAGES)),
            command=("python", "-m", "gpuserve.runtime", app.entry, "--host", "0.0.0.0", "--port", str(PORT)),
            healthcheck=("python", "-c", probe),
            example_request_json=json.dumps({"input": example_input(app.signature.input_schema())}),
        )
        files = {
            "Dockerfile": render("docker/Dockerfile.j2", ctx),
            "requirements.txt": render("_shared/requirements.txt.j2", ctx),
            ".dockerignore": render("_shared/dockerignore.j2", ctx),
            "README.md": render("docker/README.md.j2", ctx),
        }
        notes = option_notes(options, spec) + ([dockerfile.base.note] if dockerfile.base.note else [])
        return RenderedTarget(files=files, copies=runtime_copies() | code_copies(app), notes=tuple(notes))

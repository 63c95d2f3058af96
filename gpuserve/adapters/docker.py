"""docker: a plain image serving the gpuserve HTTP contract, for Kubernetes or any VM."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..example import example_input
from ..loader import LoadedApp
from ..render import render
from ._common import SERVER_PACKAGES, DockerfileContext, code_copies, requirements, runtime_copies
from .base import RenderedTarget

PORT = 8000


@dataclass(frozen=True)
class DockerContext:
    dockerfile: DockerfileContext
    name: str
    port: int
    gpu: str
    secrets: tuple[str, ...]
    timeout: int
    start_period: int
    requirements: tuple[str, ...]
    command: tuple[str, ...]
    healthcheck: tuple[str, ...]
    example_request: str

    @property
    def header(self) -> str:
        return self.dockerfile.header


class DockerTarget:
    name = "docker"
    summary = "a Docker image serving POST /predict and GET /health (Kubernetes, any VM)"

    def render(self, app: LoadedApp) -> RenderedTarget:
        spec = app.spec
        probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/health', timeout=4)"
        ctx = DockerContext(
            dockerfile=DockerfileContext.from_app(app, self.name),
            name=spec.name,
            port=PORT,
            gpu=str(spec.gpu) if spec.gpu else "",
            secrets=spec.secrets,
            timeout=spec.timeout,
            start_period=600 if spec.gpu else 60,
            requirements=tuple(requirements(app, SERVER_PACKAGES)),
            command=("python", "-m", "gpuserve.runtime", app.entry, "--host", "0.0.0.0", "--port", str(PORT)),
            healthcheck=("python", "-c", probe),
            example_request=json.dumps({"input": example_input(app.signature.input_schema())}),
        )
        files = {
            "Dockerfile": render("docker/Dockerfile.j2", ctx),
            "requirements.txt": render("_shared/requirements.txt.j2", ctx),
            ".dockerignore": render("docker/dockerignore.j2", ctx),
            "README.md": render("docker/README.md.j2", ctx),
        }
        return RenderedTarget(files=files, copies=runtime_copies() | code_copies(app))

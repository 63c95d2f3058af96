"""kubernetes: the Deployment's container command, run as a process in a virtualenv of the image's requirements.

No cluster is needed: the pod runs the Docker target's image with the command k8s/deployment.yaml gives its
container; here that command (read from the manifest, so the manifest's command is what is proven) runs from the
built directory, on 127.0.0.1 and a free port, with the Secret's keys taken from this environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from ..client import Client
from ..processes import TargetDown, free_port, started, wait_ready
from ..venvs import requirement_lines
from .base import Context, Endpoint
from .contract import health, predict_call
from .docker import local_command


def deployment_command(manifest: Path) -> list[str]:
    """The model container's command and args from a Deployment gpuserve rendered."""
    try:
        deployment = yaml.safe_load(manifest.read_text())
        (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "model"]
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise TargetDown(f"{manifest} has no `model` container: was it written by gpuserve build? ({exc})") from None
    command = [str(part) for part in [*container.get("command", []), *container.get("args", [])]]
    if not command:
        raise TargetDown(f"{manifest}: the model container sets no command; the runner does not guess the image's")
    return command


class KubernetesRunner:
    target = "kubernetes"

    def endpoints(self, streaming: bool) -> list[str]:
        return ["kubernetes"]

    def requirements(self, directory: Path) -> list[str]:
        return requirement_lines(directory / "requirements.txt")

    @contextmanager
    def serve(self, context: Context) -> Iterator[list[Endpoint]]:
        port = free_port()
        command = local_command(deployment_command(context.directory / "k8s" / "deployment.yaml"), context.python, port)
        log = context.work / "kubernetes.log"
        client = Client(port, context.call_timeout)
        try:
            with started(command, context.directory, context.env, log) as proc:
                wait_ready(lambda: health(client), proc, log, context.start_timeout, "kubernetes: GET /health")
                yield [Endpoint("kubernetes", predict_call(client, context.streaming))]
        finally:
            client.close()

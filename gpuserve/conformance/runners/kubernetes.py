"""kubernetes: the Deployment's container command, run as a process in a virtualenv of the image's requirements.

No cluster is needed: the pod runs the Docker target's image with the command k8s/deployment.yaml gives its
container; here that command (read from the manifest, so the manifest's command is what is proven) runs from the
built directory, on 127.0.0.1 and a free port, with the Secret's keys taken from this environment.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..processes import TargetDown
from .docker import ProcessRunner


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


class KubernetesRunner(ProcessRunner):
    target = "kubernetes"

    def command(self, directory: Path) -> list[str]:
        return deployment_command(directory / "k8s" / "deployment.yaml")

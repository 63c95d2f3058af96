"""One runner per target: install the built directory's requirements, start its platform's local runtime, call it."""

from __future__ import annotations

from .base import Context, Endpoint, Runner
from .cog import CogRunner
from .docker import DockerRunner
from .kubernetes import KubernetesRunner
from .modal import ModalRunner
from .runpod import RunpodRunner
from .skypilot import SkypilotRunner

RUNNERS: dict[str, Runner] = {
    "docker": DockerRunner(),
    "runpod": RunpodRunner(),
    "cog": CogRunner(),
    "modal": ModalRunner(),
    "kubernetes": KubernetesRunner(),
    "skypilot": SkypilotRunner(),
}

__all__ = ["RUNNERS", "Context", "Endpoint", "Runner"]

"""The registry of targets. Each is a small module rendering one platform's files from the spec."""

from __future__ import annotations

import importlib

from ..errors import BuildError, Problem
from .base import RenderedTarget, Target

_TARGETS: dict[str, str] = {
    "docker": "gpuserve.adapters.docker:DockerTarget",
    "runpod": "gpuserve.adapters.runpod:RunpodTarget",
    "cog": "gpuserve.adapters.cog:CogTarget",
    "modal": "gpuserve.adapters.modal:ModalTarget",
    "kubernetes": "gpuserve.adapters.kubernetes:KubernetesTarget",
    "skypilot": "gpuserve.adapters.skypilot:SkypilotTarget",
}


def target_names() -> list[str]:
    return list(_TARGETS)


def get_target(name: str) -> Target:
    if name not in _TARGETS:
        raise BuildError(
            "gpuserve build",
            [
                Problem(
                    field="--target",
                    value=name,
                    message="is not a target",
                    allowed=", ".join(_TARGETS),
                    hint="pick one of the targets listed",
                )
            ],
        )
    module_name, _, attr = _TARGETS[name].partition(":")
    target: Target = getattr(importlib.import_module(module_name), attr)()
    return target


__all__ = ["RenderedTarget", "Target", "get_target", "target_names"]

"""Mapping gpuserve's GPU names onto a platform's, with fallbacks it lacks dropped (and said so)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BuildError, Problem
from ..gpus import GPU_TYPES, GpuRequest


@dataclass(frozen=True)
class PlatformGpus:
    """What one platform calls each gpuserve GPU (several names where it has variants), and all it offers."""

    platform: str
    target: str  # the gpuserve target that renders for this platform
    names: dict[str, tuple[str, ...]]
    offered: tuple[str, ...]

    def resolve(self, gpu: GpuRequest) -> tuple[list[tuple[str, tuple[str, ...]]], list[str]]:
        """The (gpuserve name, platform names) pairs in fallback order, and notes on what was dropped.

        A single GPU the platform lacks is an error; in a fallback list, missing entries are dropped
        as long as one remains.
        """
        kept = [(name, self.names[name]) for name in gpu.types if name in self.names]
        dropped = [name for name in gpu.types if name not in self.names]
        if not kept:
            supported = [name for name in GPU_TYPES if name in self.names]
            raise BuildError(
                f"gpuserve build --target {self.target}",
                [
                    Problem(
                        field="gpu",
                        value=str(gpu),
                        message=f"{self.platform} offers none of these GPUs",
                        allowed=f"{', '.join(supported)} (on {self.platform}: {', '.join(self.offered)})",
                        hint=f'pick one of those, or list fallbacks, e.g. gpu=["{gpu.types[0]}", "{supported[0]}"]',
                    )
                ],
            )
        notes = [f"{self.platform} has no {name}; it was dropped from the fallback list" for name in dropped]
        return kept, notes

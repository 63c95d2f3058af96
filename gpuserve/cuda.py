"""Which CUDA a GPU container needs: one table from the pinned framework to its CUDA, read by every target.

A torch wheel is built against one CUDA; on a host whose driver is older it does not fail, it
silently runs on the CPU. So the base image, RunPod's CUDA floor, cog's `build.cuda` and the node
requirement in the docs all come from here. A torch that is unpinned, or pinned to a version not
in this table, gets a build note instead of a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .gpus import GpuRequest


@dataclass(frozen=True)
class Cuda:
    """A CUDA release line, the NVIDIA driver it needs, and the runtime image gpuserve builds on for it."""

    version: str  # major.minor, as RunPod's minCudaVersion and cog's build.cuda take it
    min_driver: str
    image: str
    ubuntu: str


# nvidia/cuda runtime images with cuDNN. CUDA 12.8 is the first with Blackwell (B200, RTX PRO 6000) kernels.
CUDA_12_4 = Cuda("12.4", min_driver="550", image="nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04", ubuntu="22.04")
CUDA_12_8 = Cuda("12.8", min_driver="570", image="nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04", ubuntu="24.04")
CUDA_13_0 = Cuda("13.0", min_driver="580", image="nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04", ubuntu="24.04")

# The PyPI wheels of each framework release, by the CUDA they were built with (torch's install matrix).
FRAMEWORK_CUDA: dict[tuple[str, str], Cuda] = {
    ("torch", "2.13.0"): CUDA_13_0,
}
# GPUs whose kernels need a newer CUDA than the default.
GPU_CUDA: dict[str, Cuda] = {"B200": CUDA_12_8, "RTX-PRO-6000": CUDA_12_8}
DEFAULT = CUDA_12_4


@dataclass(frozen=True)
class CudaChoice:
    """The CUDA a GPU container is built on, why, and what could not be decided."""

    cuda: Cuda
    reason: str
    note: str = ""


def pinned(pip: tuple[str, ...], package: str) -> tuple[bool, str | None]:
    """Whether `package` is asked for, and its exact `==` version when it is pinned to one."""
    for line in pip:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == package:
            exact = [s.version for s in requirement.specifier if s.operator == "==" and "*" not in s.version]
            return True, exact[0] if len(exact) == 1 else None
    return False, None


def choose_cuda(gpu: GpuRequest, pip: tuple[str, ...]) -> CudaChoice:
    """The newest CUDA any GPU in the fallback list or the pinned framework needs."""
    needs = [(GPU_CUDA[t], f"{t} kernels") for t in gpu.types if t in GPU_CUDA]
    note = ""
    asked, version = pinned(pip, "torch")
    if asked and version is not None and ("torch", version) in FRAMEWORK_CUDA:
        needs.append((FRAMEWORK_CUDA[("torch", version)], f"torch=={version} wheels"))
    elif asked:
        spec = f"torch=={version}" if version else "an unpinned torch"
        known = ", ".join(f"{name}=={v}" for name, v in FRAMEWORK_CUDA)
        note = (
            f"{spec}: gpuserve does not know which CUDA its wheels need, so the image stays on CUDA "
            f"{max([DEFAULT, *[c for c, _ in needs]], key=_key).version}; pin one gpuserve knows ({known}) "
            "or check the wheel's CUDA against the hosts' driver"
        )
    if not needs:
        return CudaChoice(DEFAULT, "the default for GPU models", note)
    cuda, reason = max(needs, key=lambda pair: _key(pair[0]))
    return CudaChoice(cuda, reason, note)


def _key(cuda: Cuda) -> tuple[int, ...]:
    return tuple(int(part) for part in cuda.version.split("."))

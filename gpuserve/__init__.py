"""gpuserve: one model class, served the same on Modal, RunPod, Replicate, Docker and locally."""

from .decorator import model
from .errors import BuildError, DeployError, GpuserveError, LoadError, SpecError
from .spec import Image, ModelSpec

__version__ = "0.1.0"
__all__ = [
    "model",
    "Image",
    "ModelSpec",
    "GpuserveError",
    "SpecError",
    "LoadError",
    "BuildError",
    "DeployError",
    "__version__",
]

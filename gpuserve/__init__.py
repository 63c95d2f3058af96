"""gpuserve: one model class, served the same on Modal, RunPod, Replicate, Docker and locally."""

from .decorator import model
from .errors import BuildError, DeployError, GpuserveError, LoadError, SpecError
from .spec import Image, Limits, ModelSpec
from .weights import URL, HuggingFace, Local, WeightsError, weights_path

__version__ = "0.1.0"
__all__ = [
    "model",
    "Image",
    "Limits",
    "ModelSpec",
    "HuggingFace",
    "URL",
    "Local",
    "weights_path",
    "GpuserveError",
    "SpecError",
    "LoadError",
    "BuildError",
    "DeployError",
    "WeightsError",
    "__version__",
]

"""gpuserve: one model class, served the same on Modal, RunPod, Replicate, Docker and locally."""

from typing import TYPE_CHECKING, Any

from .decorator import model
from .errors import BuildError, DeployError, GpuserveError, LoadError, SpecError
from .files import File, FileLimits
from .spec import Batch, Image, ItemError, Limits, ModelSpec
from .weights import URL, HuggingFace, Local, WeightsError, weights_path

if TYPE_CHECKING:  # imported on first use, by __getattr__ below: the client needs httpx
    from .client import (
        AsyncClient,
        AsyncFailover,
        AuthError,
        Backoff,
        Client,
        ClientConfigError,
        ClientError,
        ClientInputError,
        ClientTimeout,
        Failover,
        FailoverExhausted,
        PredictError,
        Unavailable,
    )

__version__ = "0.1.0"
__all__ = [
    "model",
    "Image",
    "Limits",
    "Batch",
    "ItemError",
    "File",
    "FileLimits",
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
    "Client",
    "AsyncClient",
    "Failover",
    "AsyncFailover",
    "Backoff",
    "ClientError",
    "ClientConfigError",
    "ClientInputError",
    "PredictError",
    "Unavailable",
    "FailoverExhausted",
    "ClientTimeout",
    "AuthError",
    "__version__",
]
# What __getattr__ imports from gpuserve.client on first use (mypy reads the TYPE_CHECKING import above).
_CLIENT = frozenset(
    {"Client", "AsyncClient", "Failover", "AsyncFailover", "Backoff", "ClientError", "ClientConfigError"}
    | {"ClientInputError", "PredictError", "Unavailable", "FailoverExhausted", "ClientTimeout", "AuthError"}
)


def __getattr__(name: str) -> Any:
    """gpuserve.Client and its errors, imported on first use: `import gpuserve` does not load httpx."""
    if name in _CLIENT:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

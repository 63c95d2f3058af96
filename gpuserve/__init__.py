"""gpuserve: one model class, served the same on Modal, RunPod, Replicate, Docker and locally."""

import importlib
from typing import TYPE_CHECKING, Any

from .errors import BuildError, DeployError, GpuserveError, LoadError, SpecError

if TYPE_CHECKING:  # imported on first use, by __getattr__ below (mypy reads them here)
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
    from .decorator import model
    from .files import File, FileLimits
    from .spec import Batch, Image, ItemError, Limits, ModelSpec
    from .weights import URL, HuggingFace, Local, WeightsError, weights_path

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
# Where __getattr__ finds each name on first use. The model's side needs pydantic, the client's httpx: an application
# that only calls a model (gpuserve.client) loads neither the decorator nor pydantic, and one that defines a model
# never loads httpx.
_CLIENT = frozenset(
    {"Client", "AsyncClient", "Failover", "AsyncFailover", "Backoff", "ClientError", "ClientConfigError"}
    | {"ClientInputError", "PredictError", "Unavailable", "FailoverExhausted", "ClientTimeout", "AuthError"}
)
_FROM = {
    "model": "decorator",
    **dict.fromkeys(("File", "FileLimits"), "files"),
    **dict.fromkeys(("Batch", "Image", "ItemError", "Limits", "ModelSpec"), "spec"),
    **dict.fromkeys(("URL", "HuggingFace", "Local", "WeightsError", "weights_path"), "weights"),
    **dict.fromkeys(_CLIENT, "client"),
}


def __getattr__(name: str) -> Any:
    """gpuserve.model, the spec's parts and gpuserve.Client, imported on first use (kept after it)."""
    module = _FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """What completion offers: the lazy names too, before their first use."""
    return sorted({*globals(), *__all__})

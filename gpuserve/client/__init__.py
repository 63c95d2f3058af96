"""One client for a model wherever it is served: gpuserve's HTTP, RunPod, cog, Replicate and Modal.

Imported on first use of gpuserve.Client (it needs httpx), so `import gpuserve` stays light.
"""

from .backoff import Backoff
from .client import AsyncClient, Client, Options, Target
from .errors import (
    AuthError,
    ClientConfigError,
    ClientError,
    ClientInputError,
    ClientTimeout,
    FailoverExhausted,
    FieldError,
    PredictError,
    Unavailable,
)
from .failover import AsyncFailover, Failover

__all__ = [
    "AsyncClient",
    "AsyncFailover",
    "AuthError",
    "Backoff",
    "Client",
    "ClientConfigError",
    "ClientError",
    "ClientInputError",
    "ClientTimeout",
    "Failover",
    "FailoverExhausted",
    "FieldError",
    "Options",
    "PredictError",
    "Target",
    "Unavailable",
]

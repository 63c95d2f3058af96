"""Loading APP for a command, with gpuserve's own errors printed plainly (no traceback)."""

from __future__ import annotations

from ..errors import GpuserveError
from ..loader import LoadedApp, load_app
from . import fail


def load_or_exit(ref: str) -> LoadedApp:
    try:
        return load_app(ref)
    except GpuserveError as exc:
        fail(exc)
        raise  # unreachable: fail exits

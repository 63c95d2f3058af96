"""Where model weights are cached, the same way in every container.

GPUSERVE_CACHE_DIR (set by each target to a disk that survives restarts where the platform
has one) becomes the home of the Hugging Face and PyTorch caches, unless the user set those.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "GPUSERVE_CACHE_DIR"


def configure_cache() -> Path | None:
    """Point the common model caches at GPUSERVE_CACHE_DIR. Returns the directory, or None when unset."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        return None
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HOME", str(path / "huggingface"))
    os.environ.setdefault("TORCH_HOME", str(path / "torch"))
    return path

"""Serve one model with uvicorn. SIGTERM/SIGINT (spot preemption, scale-down) drain before shutdown()."""

from __future__ import annotations

import logging
import os
from types import FrameType

import uvicorn

from ..spec import DEFAULT_GRACE_SECONDS
from .host import ModelHost
from .server import create_app


class _DrainingServer(uvicorn.Server):
    """uvicorn's own signal handling, plus: /health says "draining" the moment a signal arrives."""

    def __init__(self, config: uvicorn.Config, host: ModelHost) -> None:
        super().__init__(config)
        self.host = host

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.host.drain()
        super().handle_exit(sig, frame)


def serve(app_ref: str, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Load APP and serve it until a signal; requests in flight finish, then the model's shutdown() runs."""
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    model_host = ModelHost.from_ref(app_ref)
    grace = int(os.environ.get("GPUSERVE_GRACE_SECONDS", DEFAULT_GRACE_SECONDS))
    config = uvicorn.Config(
        create_app(model_host),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=grace,
        lifespan="on",
    )
    _DrainingServer(config, model_host).run()

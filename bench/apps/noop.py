"""The no-op model the serving and cold-start benches serve with gpuserve: predict echoes its input."""

from __future__ import annotations

import gpuserve


@gpuserve.model(name="noop")
class Noop:
    async def predict(self, text: str) -> str:
        return text


@gpuserve.model(name="noop-sync")
class NoopSync:
    def predict(self, text: str) -> str:
        return text

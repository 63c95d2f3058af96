"""The bridge a generated cog runner calls: cog's keyword inputs in, the model's JSON out.

cog validates inputs against .cog/openapi_schema.json before they reach here; the host
validates again, so the model sees exactly what it sees on every other target.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from .host import InvalidInput, ModelHost, PredictFailed


class CogBridge:
    def __init__(self, host: ModelHost) -> None:
        self.host = host

    @classmethod
    def load(cls, app_ref: str) -> CogBridge:
        return cls(ModelHost.from_ref(app_ref))

    def setup(self) -> None:
        """Run the model's setup() once; its shutdown() runs when cog's worker process exits."""
        self.host.setup()
        self.host.shutdown_at_exit()

    # Errors reach cog as the model's own exception, so its "error" reads "ValueError: ...".
    def predict(self, inputs: dict[str, Any]) -> Any:
        try:
            return self.host.predict(self._valid(inputs))
        except PredictFailed as exc:
            raise _original(exc) from None

    def stream(self, inputs: dict[str, Any]) -> Iterator[Any]:
        try:
            yield from self.host.stream(self._valid(inputs))
        except PredictFailed as exc:
            raise _original(exc) from None

    async def apredict(self, inputs: dict[str, Any]) -> Any:
        try:
            return await self.host.apredict(self._valid(inputs))
        except PredictFailed as exc:
            raise _original(exc) from None

    async def astream(self, inputs: dict[str, Any]) -> AsyncIterator[Any]:
        try:
            async for chunk in self.host.astream(self._valid(inputs)):
                yield chunk
        except PredictFailed as exc:
            raise _original(exc) from None

    def _valid(self, inputs: dict[str, Any]) -> Any:
        try:
            return self.host.validate({k: v for k, v in inputs.items() if v is not None or k in self._nullable})
        except InvalidInput as exc:
            raise ValueError(f"invalid input: {exc}") from None

    @property
    def _nullable(self) -> set[str]:
        fields = self.host.signature.input_model.model_fields
        return {name for name, field in fields.items() if not field.is_required() and field.default is None}


def _original(exc: PredictFailed) -> BaseException:
    return exc.__cause__ if exc.__cause__ is not None else exc

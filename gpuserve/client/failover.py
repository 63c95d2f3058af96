"""gpuserve.Failover: several endpoints of one model, tried in order, as one client.

A client is left for the next one when it cannot answer now (busy, out of capacity, draining, starting,
unreachable: gpuserve.Unavailable) or not in time (gpuserve.ClientTimeout, or past the latency budget).
A refused input or the model's own error is raised at once: it would fail the same way everywhere. Each
client gets one try per round; when every client failed, the next round starts after the backoff's wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

from .backoff import Backoff
from .client import AsyncClient, Client, inputs_of
from .errors import ClientConfigError, ClientError, FailoverExhausted

log = logging.getLogger("gpuserve.client")
C = TypeVar("C", Client, AsyncClient)
BUDGET = "latency_budget"


class _Order(Generic[C]):
    """The order, the budget and the rounds both failovers share, and what they say when all clients failed."""

    def __init__(self, clients: Sequence[C], kind: type[C], latency_budget: float | None, backoff: Backoff | None):
        if not clients or not all(isinstance(c, kind) for c in clients):
            given = [type(c).__name__ for c in clients]
            raise ClientConfigError(
                f"clients={given!r}: {type(self).__name__} needs one or more {kind.__name__} objects. "
                f"Fix: {type(self).__name__}([{kind.__name__}(url_a, target=...), {kind.__name__}(url_b, ...)])"
            )
        if latency_budget is not None and (isinstance(latency_budget, bool) or latency_budget <= 0):
            raise ClientConfigError(f"latency_budget={latency_budget!r} is not allowed. Allowed: None or seconds > 0")
        self.clients: list[C] = list(clients)
        self.latency_budget = latency_budget
        self.backoff = backoff or Backoff(attempts=2)
        self.last_answered: C | None = None

    def limit(self, index: int) -> float | None:
        """The budget holds for every client but the last, which has its own timeout: someone must answer."""
        return self.latency_budget if index < len(self.clients) - 1 else None

    def moving_on(self, client: C, error: ClientError, errors: list[ClientError]) -> None:
        if not error.moves_on:
            raise error
        errors.append(error.at(client.name))
        log.info("%s; trying the next endpoint", error)

    def round_wait(self, round_: int, errors: list[ClientError]) -> float:
        """Seconds before the next round; raises Unavailable (naming every failure) when no round is left."""
        if round_ >= self.backoff.attempts:
            lines = "; ".join(str(e) for e in errors)
            message = f"no endpoint answered ({len(self.clients)} tried, {round_} round(s)): {lines}"
            raise FailoverExhausted(message, errors=errors) from errors[-1]
        asked = [e.retry_after for e in errors[-len(self.clients) :] if e.retry_after is not None]
        return self.backoff.delay(round_, min(asked) if asked else None)


class Failover(_Order[Client]):
    """Has a Client's methods. clients: tried in this order. latency_budget: seconds a client may take to answer
    (a stream: to its first chunk) before the next is tried; the last one has its own timeout. backoff: its
    attempts are rounds over all clients (2). last_answered: the client that answered the last call."""

    def __init__(
        self, clients: Sequence[Client], latency_budget: float | None = None, *, backoff: Backoff | None = None
    ) -> None:
        super().__init__(clients, Client, latency_budget, backoff)

    def predict(self, inputs: Mapping[str, Any] | None = None, /, **fields: Any) -> Any:
        body = inputs_of(inputs, fields)
        errors: list[ClientError] = []
        round_ = 1
        while True:
            for index, client in enumerate(self.clients):
                try:
                    output = client.driver.result(
                        partial(client.envelope.predict, body), attempts=1, limit=self.limit(index), what=BUDGET
                    )
                except ClientError as exc:
                    self.moving_on(client, exc, errors)
                    continue
                self.last_answered = client
                return output
            time.sleep(self.round_wait(round_, errors))
            round_ += 1

    def stream(self, inputs: Mapping[str, Any] | None = None, /, **fields: Any) -> Iterator[Any]:
        body = inputs_of(inputs, fields)
        errors: list[ClientError] = []
        round_ = 1
        while True:
            for index, client in enumerate(self.clients):
                sent = False
                try:
                    for chunk in client.driver.chunks(
                        partial(client.envelope.stream, body), attempts=1, limit=self.limit(index), what=BUDGET
                    ):
                        if not sent:
                            sent, self.last_answered = True, client
                        yield chunk
                except ClientError as exc:
                    if sent:
                        raise
                    self.moving_on(client, exc, errors)
                    continue
                self.last_answered = client
                return
            time.sleep(self.round_wait(round_, errors))
            round_ += 1

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def __enter__(self) -> Failover:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncFailover(_Order[AsyncClient]):
    """Failover for AsyncClients: `await predict(...)`, `async for chunk in stream(...)`."""

    def __init__(
        self, clients: Sequence[AsyncClient], latency_budget: float | None = None, *, backoff: Backoff | None = None
    ) -> None:
        super().__init__(clients, AsyncClient, latency_budget, backoff)

    async def predict(self, inputs: Mapping[str, Any] | None = None, /, **fields: Any) -> Any:
        body = inputs_of(inputs, fields)
        errors: list[ClientError] = []
        round_ = 1
        while True:
            for index, client in enumerate(self.clients):
                try:
                    output = await client.driver.result(
                        partial(client.envelope.predict, body), attempts=1, limit=self.limit(index), what=BUDGET
                    )
                except ClientError as exc:
                    self.moving_on(client, exc, errors)
                    continue
                self.last_answered = client
                return output
            await asyncio.sleep(self.round_wait(round_, errors))
            round_ += 1

    async def stream(self, inputs: Mapping[str, Any] | None = None, /, **fields: Any) -> AsyncIterator[Any]:
        body = inputs_of(inputs, fields)
        errors: list[ClientError] = []
        round_ = 1
        while True:
            for index, client in enumerate(self.clients):
                sent = False
                try:
                    chunks = client.driver.chunks(
                        partial(client.envelope.stream, body), attempts=1, limit=self.limit(index), what=BUDGET
                    )
                    async with contextlib.aclosing(chunks):
                        async for chunk in chunks:
                            if not sent:
                                sent, self.last_answered = True, client
                            yield chunk
                except ClientError as exc:
                    if sent:
                        raise
                    self.moving_on(client, exc, errors)
                    continue
                self.last_answered = client
                return
            await asyncio.sleep(self.round_wait(round_, errors))
            round_ += 1

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    async def __aenter__(self) -> AsyncFailover:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

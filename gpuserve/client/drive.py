"""Run an envelope's steps over HTTP: one driver on httpx.Client, one on httpx.AsyncClient, the same rules.

A call has one deadline (the client's timeout) that every request, wait and event shares. A try that ends
in a retryable error is tried again after the backoff's wait (never sooner than Retry-After), while tries
and time are left; a stream is only tried again if it has not yielded a chunk yet.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from httpx_sse import EventSource, ServerSentEvent

from .backoff import Backoff
from .errors import ClientError, ClientTimeout, Unavailable
from .exchange import Chunk, Event, Exchange, NextEvent, Reply, Request, Wait

T = TypeVar("T")
log = logging.getLogger("gpuserve.client")
# Connecting takes no longer than this, whatever is left of the call's time.
CONNECT_SECONDS = 10.0
# A cleanup request (cancelling a hosted job) gets this long, even past the deadline.
CLEANUP_SECONDS = 5.0


class Deadline:
    """The time a call has left; `what` names the limit in the error ("timeout=30s", "latency_budget=2s")."""

    def __init__(self, seconds: float, what: str = "timeout") -> None:
        self.seconds = seconds
        self.what = what
        self.started = time.monotonic()
        self.at = self.started + seconds

    def widen(self, seconds: float) -> None:
        """Give the call `seconds` from its start (a stream's first chunk came within a latency budget)."""
        if seconds > self.seconds:
            self.seconds, self.what, self.at = seconds, "timeout", self.started + seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    def error(self) -> ClientTimeout:
        return ClientTimeout(f"no answer within {self.what}={self.seconds:g}s")


@dataclass
class Box:
    """Where a try puts the exchange's result (an async generator cannot return one)."""

    value: Any = None


class Policy:
    """What both drivers share: which client this is, its timeout and backoff, and when to try again."""

    def __init__(self, *, endpoint: str, timeout: float, backoff: Backoff) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.backoff = backoff

    def deadline(self, limit: float | None, what: str | None) -> Deadline:
        if limit is None or limit >= self.timeout:
            return Deadline(self.timeout)
        return Deadline(limit, what or "timeout")

    def wait_before_retry(self, error: ClientError, attempt: int, attempts: int, deadline: Deadline) -> float:
        """Seconds to wait before try attempt+1; raises the error where it is not retryable, the tries are spent,
        or the wait would run past the deadline."""
        error.at(self.endpoint)
        if not error.retryable or attempt >= attempts:
            raise error
        wait = self.backoff.delay(attempt, error.retry_after)
        if wait >= deadline.left():
            raise error
        log.info("%s; try %d of %d in %.2f s", error, attempt + 1, attempts, wait)
        return wait

    def timeout_for(self, step: Request, deadline: Deadline) -> httpx.Timeout:
        seconds = CLEANUP_SECONDS if step.cleanup else deadline.left()
        if seconds <= 0:
            raise deadline.error()
        return httpx.Timeout(seconds, connect=min(seconds, CONNECT_SECONDS))

    def transport_error(self, exc: httpx.HTTPError, url: str, deadline: Deadline) -> ClientError:
        """A connection that failed is retryable; an answer that did not come before the deadline is a timeout
        (each read may take what is left of the call's time)."""
        if deadline.left() <= 0.05:
            return deadline.error()
        if isinstance(exc, (httpx.ReadTimeout, httpx.WriteTimeout)):
            return ClientTimeout(f"{url}: no data within its read timeout: {type(exc).__name__}")
        if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
            return Unavailable(f"{url} could not be reached within {CONNECT_SECONDS:g}s: {type(exc).__name__}")
        return Unavailable(f"{url} could not be reached: {type(exc).__name__}: {exc}")


def _request(http: httpx.Client | httpx.AsyncClient, step: Request, timeout: httpx.Timeout) -> httpx.Request:
    body = {"json": step.json} if step.has_body else {}
    return http.build_request(step.method, step.url, headers=dict(step.headers), timeout=timeout, **body)


def _is_event_stream(response: httpx.Response) -> bool:
    media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    return response.status_code < 300 and media == "text/event-stream"


def _event(sse: ServerSentEvent | None) -> Event | None:
    return None if sse is None else Event(sse.event, sse.data)


class SyncDriver:
    def __init__(self, http: httpx.Client, policy: Policy) -> None:
        self.http = http
        self.policy = policy

    def result(
        self,
        make: Callable[[], Exchange[T]],
        *,
        attempts: int | None = None,
        limit: float | None = None,
        what: str | None = None,
    ) -> T:
        """Run the exchange to its result, trying again as the policy allows; limit shortens the timeout."""
        deadline = self.policy.deadline(limit, what)
        tries = attempts or self.policy.backoff.attempts
        attempt = 1
        while True:
            box = Box()
            try:
                collections.deque(self._run(make(), deadline, box), maxlen=0)
                value: T = box.value
                return value
            except ClientError as exc:
                time.sleep(self.policy.wait_before_retry(exc, attempt, tries, deadline))
                attempt += 1

    def chunks(
        self,
        make: Callable[[], Exchange[None]],
        *,
        attempts: int | None = None,
        limit: float | None = None,
        what: str | None = None,
    ) -> Iterator[Any]:
        deadline = self.policy.deadline(limit, what)
        tries = attempts or self.policy.backoff.attempts
        attempt = 1
        while True:
            sent = False
            try:
                with contextlib.closing(self._run(make(), deadline, Box())) as run:
                    for chunk in run:
                        if not sent:
                            sent = True
                            deadline.widen(self.policy.timeout)  # a latency budget bounds the first chunk
                        yield chunk
                return
            except ClientError as exc:
                if sent:
                    raise exc.at(self.policy.endpoint) from None
                time.sleep(self.policy.wait_before_retry(exc, attempt, tries, deadline))
                attempt += 1

    def _run(self, gen: Exchange[Any], deadline: Deadline, box: Box) -> Generator[Any, None, None]:
        """One try: perform each step the envelope yields; yield its chunks; put its result in box."""
        events: Iterator[ServerSentEvent] | None = None
        value: Any = None
        error: ClientError | None = None
        with contextlib.ExitStack() as stack, contextlib.closing(gen):
            while True:
                try:
                    step = gen.throw(error) if error is not None else gen.send(value)
                except StopIteration as stop:
                    box.value = stop.value
                    return
                value, error = None, None
                try:
                    if isinstance(step, Chunk):
                        yield step.value
                    elif isinstance(step, Wait):
                        if step.seconds >= deadline.left():
                            raise deadline.error()
                        time.sleep(step.seconds)
                    elif isinstance(step, NextEvent):
                        value = self._next_event(events, deadline)
                    else:
                        value, opened = self._send(step, deadline, stack)
                        events = opened or events
                except ClientError as exc:
                    error = exc

    def _send(
        self, step: Request, deadline: Deadline, stack: contextlib.ExitStack
    ) -> tuple[Reply | None, Iterator[ServerSentEvent] | None]:
        try:
            request = _request(self.http, step, self.policy.timeout_for(step, deadline))
            response = self.http.send(request, stream=step.events)
        except httpx.HTTPError as exc:
            if step.cleanup:
                return None, None
            raise self.policy.transport_error(exc, step.url, deadline) from None
        if step.events and _is_event_stream(response):
            stack.callback(response.close)
            return Reply(response.status_code, response.headers, b"", streaming=True), EventSource(response).iter_sse()
        try:
            body = response.read()
        except httpx.HTTPError as exc:
            raise self.policy.transport_error(exc, step.url, deadline) from None
        finally:
            response.close()
        return Reply(response.status_code, response.headers, body), None

    def _next_event(self, events: Iterator[ServerSentEvent] | None, deadline: Deadline) -> Event | None:
        assert events is not None, "NEXT_EVENT before a request opened an event stream"
        if deadline.left() <= 0:
            raise deadline.error()
        try:
            return _event(next(events, None))
        except httpx.HTTPError as exc:
            raise self.policy.transport_error(exc, "the event stream", deadline) from None


class AsyncDriver:
    def __init__(self, http: httpx.AsyncClient, policy: Policy) -> None:
        self.http = http
        self.policy = policy

    async def result(
        self,
        make: Callable[[], Exchange[T]],
        *,
        attempts: int | None = None,
        limit: float | None = None,
        what: str | None = None,
    ) -> T:
        deadline = self.policy.deadline(limit, what)
        tries = attempts or self.policy.backoff.attempts
        attempt = 1
        while True:
            box = Box()
            try:
                async for _ in self._run(make(), deadline, box):
                    pass
                value: T = box.value
                return value
            except ClientError as exc:
                await asyncio.sleep(self.policy.wait_before_retry(exc, attempt, tries, deadline))
                attempt += 1

    async def chunks(
        self,
        make: Callable[[], Exchange[None]],
        *,
        attempts: int | None = None,
        limit: float | None = None,
        what: str | None = None,
    ) -> AsyncGenerator[Any, None]:
        deadline = self.policy.deadline(limit, what)
        tries = attempts or self.policy.backoff.attempts
        attempt = 1
        while True:
            sent = False
            try:
                async with contextlib.aclosing(self._run(make(), deadline, Box())) as run:
                    async for chunk in run:
                        if not sent:
                            sent = True
                            deadline.widen(self.policy.timeout)
                        yield chunk
                return
            except ClientError as exc:
                if sent:
                    raise exc.at(self.policy.endpoint) from None
                await asyncio.sleep(self.policy.wait_before_retry(exc, attempt, tries, deadline))
                attempt += 1

    async def _run(self, gen: Exchange[Any], deadline: Deadline, box: Box) -> AsyncGenerator[Any, None]:
        events: AsyncIterator[ServerSentEvent] | None = None
        value: Any = None
        error: ClientError | None = None
        async with contextlib.AsyncExitStack() as stack:
            try:
                while True:
                    try:
                        step = gen.throw(error) if error is not None else gen.send(value)
                    except StopIteration as stop:
                        box.value = stop.value
                        return
                    value, error = None, None
                    try:
                        if isinstance(step, Chunk):
                            yield step.value
                        elif isinstance(step, Wait):
                            if step.seconds >= deadline.left():
                                raise deadline.error()
                            await asyncio.sleep(step.seconds)
                        elif isinstance(step, NextEvent):
                            value = await self._next_event(events, deadline)
                        else:
                            value, opened = await self._send(step, deadline, stack)
                            events = opened or events
                    except ClientError as exc:
                        error = exc
            finally:
                gen.close()

    async def _send(
        self, step: Request, deadline: Deadline, stack: contextlib.AsyncExitStack
    ) -> tuple[Reply | None, AsyncIterator[ServerSentEvent] | None]:
        try:
            request = _request(self.http, step, self.policy.timeout_for(step, deadline))
            response = await self.http.send(request, stream=step.events)
        except httpx.HTTPError as exc:
            if step.cleanup:
                return None, None
            raise self.policy.transport_error(exc, step.url, deadline) from None
        if step.events and _is_event_stream(response):
            events = EventSource(response).aiter_sse()
            stack.push_async_callback(response.aclose)
            stack.push_async_callback(events.aclose)  # runs first: the events, then the response
            return Reply(response.status_code, response.headers, b"", streaming=True), events
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            raise self.policy.transport_error(exc, step.url, deadline) from None
        finally:
            await response.aclose()
        return Reply(response.status_code, response.headers, body), None

    async def _next_event(self, events: AsyncIterator[ServerSentEvent] | None, deadline: Deadline) -> Event | None:
        assert events is not None, "NEXT_EVENT before a request opened an event stream"
        if deadline.left() <= 0:
            raise deadline.error()
        try:
            return _event(await anext(events, None))
        except httpx.HTTPError as exc:
            raise self.policy.transport_error(exc, "the event stream", deadline) from None

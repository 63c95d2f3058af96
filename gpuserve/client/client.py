"""gpuserve.Client and gpuserve.AsyncClient: call a model the same way wherever it is served.

`target` picks the envelope; everything else (inputs, outputs, errors, retries, timeouts) is the same, so
moving a model from one provider to another changes the url and the target, not the code around them.
"""

from __future__ import annotations

import base64
import mimetypes
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypedDict, Unpack, get_args

import httpx

from .. import __version__
from .backoff import Backoff
from .base import Envelope, Settings
from .cog import Cog
from .drive import AsyncDriver, Policy, SyncDriver
from .errors import ClientConfigError
from .gpuserve_http import GpuserveHTTP
from .replicate import Replicate
from .runpod import RunPod

Target = Literal["local", "docker", "modal", "runpod", "cog", "replicate"]
ENVELOPES: dict[str, Callable[[Settings], Envelope]] = {
    "local": GpuserveHTTP,
    "docker": GpuserveHTTP,
    "modal": GpuserveHTTP,
    "runpod": RunPod,
    "cog": Cog,
    "replicate": Replicate,
}
assert set(ENVELOPES) == set(get_args(Target))
USER_AGENT = f"gpuserve-client/{__version__}"


class Options(TypedDict, total=False):
    """The keyword arguments both clients take, each declared once (defaults in _Endpoint).

    token: the credential, where the platform's usual variable should not be read (GPUSERVE_AUTH_TOKEN,
    RUNPOD_API_KEY, REPLICATE_API_TOKEN). timeout: seconds one call may take in all, retries and polling
    included (600). backoff: how often and how long to retry (Backoff(attempts=1) turns retries off).
    poll: submit the job and poll it (RunPod /run, Replicate without `Prefer: wait`) instead of holding the
    request open (False). poll_interval: seconds between polls (0.5). headers: sent with every request.
    name: how errors and Failover.last_answered name this client ("TARGET URL").
    """

    token: str | None
    timeout: float
    backoff: Backoff | None
    poll: bool
    poll_interval: float
    headers: Mapping[str, str] | None
    name: str | None


class _Endpoint:
    """The arguments both clients take, checked once; url's forms for each target are in docs/client.md."""

    def __init__(self, url: str, target: Target = "local", **options: Unpack[Options]) -> None:
        if target not in ENVELOPES:
            raise ClientConfigError(
                f"target={target!r} is not a target the client knows. Allowed: {', '.join(ENVELOPES)}. "
                "Fix: the target the endpoint was built for (`gpuserve build --target`)"
            )
        timeout = options.get("timeout", 600.0)
        poll_interval = options.get("poll_interval", 0.5)
        for field, value in (("timeout", timeout), ("poll_interval", poll_interval)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ClientConfigError(f"{field}={value!r} is not allowed. Allowed: seconds > 0")
        settings = Settings(
            url=url,
            target=target,
            token=options.get("token"),
            headers=dict(options.get("headers") or {}),
            poll=bool(options.get("poll", False)),
            poll_interval=float(poll_interval),
            env=os.environ,
        )
        self.envelope = ENVELOPES[target](settings)
        self.target: str = target
        self.url = self.envelope.url
        self.name = options.get("name") or f"{target} {self.url}"
        self.timeout = float(timeout)
        self.backoff = options.get("backoff") or Backoff()
        self.policy = Policy(endpoint=self.name, timeout=self.timeout, backoff=self.backoff)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, target={self.target!r})"


class Client(_Endpoint):
    """Calls one endpoint: predict(**input) returns the output, stream(**input) yields its chunks.

    Client(url, target="local"|"docker"|"modal"|"runpod"|"cog"|"replicate", **Options); transport is
    httpx's, for tests and proxies.

    Inputs go as keywords, or as one mapping for names that are not Python identifiers; a pathlib.Path or
    bytes value is sent as a data: URI. File outputs come back as the endpoint gave them (a data: URI or a
    URL). Thread-safe; close() (or a with block) closes its connections.
    """

    def __init__(
        self,
        url: str,
        target: Target = "local",
        *,
        transport: httpx.BaseTransport | None = None,
        **options: Unpack[Options],
    ) -> None:
        super().__init__(url, target, **options)
        self.http = httpx.Client(transport=transport, headers={"User-Agent": USER_AGENT})
        self.driver = SyncDriver(self.http, self.policy)

    def predict(self, inputs: Mapping[str, Any] | None = None, /, **fields: Any) -> Any:
        body = inputs_of(inputs, fields)
        return self.driver.result(partial(self.envelope.predict, body))

    def stream(self, inputs: Mapping[str, Any] | None = None, /, **fields: Any) -> Iterator[Any]:
        body = inputs_of(inputs, fields)
        return self.driver.chunks(partial(self.envelope.stream, body))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Endpoint):
    """Client's asyncio twin, with the same arguments: `await predict(**input)`, `async for c in stream(...)`."""

    def __init__(
        self,
        url: str,
        target: Target = "local",
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[Options],
    ) -> None:
        super().__init__(url, target, **options)
        self.http = httpx.AsyncClient(transport=transport, headers={"User-Agent": USER_AGENT})
        self.driver = AsyncDriver(self.http, self.policy)

    async def predict(self, inputs: Mapping[str, Any] | None = None, /, **fields: Any) -> Any:
        body = inputs_of(inputs, fields)
        return await self.driver.result(partial(self.envelope.predict, body))

    def stream(self, inputs: Mapping[str, Any] | None = None, /, **fields: Any) -> AsyncIterator[Any]:
        body = inputs_of(inputs, fields)
        return self.driver.chunks(partial(self.envelope.stream, body))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def inputs_of(given: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The input to send: the mapping and the keywords together (a keyword wins), files as data: URIs."""
    merged = {**(given or {}), **fields}
    return {name: _as_data_uri(value) if isinstance(value, Path | bytes) else value for name, value in merged.items()}


def _as_data_uri(value: Path | bytes) -> str:
    if isinstance(value, Path):
        content_type = mimetypes.guess_type(value.name)[0] or "application/octet-stream"
        return f"data:{content_type};base64,{base64.b64encode(value.read_bytes()).decode()}"
    return f"data:application/octet-stream;base64,{base64.b64encode(value).decode()}"

"""What every runner shares: the context it starts a target in, and the endpoints it answers on."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..compare import Kind, Outcome

Call = Callable[[Any], Outcome]


@dataclass(frozen=True)
class Context:
    """Where and how to start one built target."""

    directory: Path  # the built directory, as `gpuserve build` wrote it
    python: str  # the interpreter of the target's virtualenv
    env: dict[str, str]  # the environment to start it with (the image's, under this process's)
    class_name: str
    streaming: bool
    work: Path  # a private folder for logs and helper scripts
    start_timeout: float
    call_timeout: float


@dataclass(frozen=True)
class Endpoint:
    """One way a target is called: a column of the report ("modal .local()", "modal web")."""

    name: str
    call: Call


class Runner(Protocol):
    """Builds nothing itself: it installs, starts and talks to a directory `gpuserve build` wrote."""

    target: str

    def endpoints(self, streaming: bool) -> list[str]:
        """The names of the endpoints serve() yields, known before starting (the report's columns)."""
        ...

    def requirements(self, directory: Path) -> list[str]:
        """What the target's virtualenv holds: the rendered requirements plus what the platform's image adds."""
        ...

    def serve(self, context: Context) -> AbstractContextManager[list[Endpoint]]:
        """Start the target with its platform's own local runtime; stop everything on the way out."""
        ...


def timed(started: float, kind: Kind, value: Any = None, message: str = "") -> Outcome:
    """An outcome, with the seconds since `started` (time.perf_counter())."""
    return Outcome(kind, value, message, time.perf_counter() - started)


def guarded(call: Call) -> Call:
    """The call, with a lost connection or a timeout answered as an `error` outcome instead of raised."""

    def safe(value: Any) -> Outcome:
        started = time.perf_counter()
        try:
            return call(value)
        except TimeoutError:
            return timed(started, "error", message="no answer before the timeout")
        except (OSError, http.client.HTTPException) as exc:
            return timed(started, "error", message=f"the connection failed: {type(exc).__name__}: {exc}")

    return safe

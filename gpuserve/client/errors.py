"""What a call to an endpoint can end in, the same for every platform.

Each error keeps what the endpoint said (the model's exception type and message, the fields an input broke)
and says what trying again can do: `retryable` errors are retried on the same endpoint with backoff; a
Failover moves on from those and from timeouts (`moves_on`). The others (a refused input, the model's own
failure) would fail the same way on every endpoint, so nothing retries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..errors import GpuserveError


@dataclass(frozen=True)
class FieldError:
    """One input field the endpoint refused: its name (dotted for nested fields), why, and the error kind."""

    field: str
    message: str
    type: str = ""

    def render(self) -> str:
        return f"{self.field}: {self.message}"


class ClientError(GpuserveError):
    """Base of every error a gpuserve.Client raises.

    message: what the endpoint (or the model) said, unchanged. type: its error type where it gave one
    (the model's exception class, "Busy", "InvalidInput"). status: the HTTP status, if there was an answer.
    endpoint: the client's name. retry_after: seconds the endpoint asked to wait before trying again.
    """

    retryable: ClassVar[bool] = False
    moves_on: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        status: int | None = None,
        endpoint: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.type = type
        self.status = status
        self.endpoint = endpoint
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        where = ", ".join(part for part in (self.endpoint, f"HTTP {self.status}" if self.status else "") if part)
        head = f"{self.type}: {self.message}" if self.type else self.message
        return f"{head} ({where})" if where else head

    def at(self, endpoint: str) -> ClientError:
        """The same error, naming the client it came from."""
        self.endpoint = endpoint
        self.args = (self._render(),)
        return self


class ClientConfigError(ClientError):
    """A Client was given an argument it cannot use (an unknown target, a URL of the wrong form)."""


class ClientInputError(ClientError):
    """The endpoint refused the input (HTTP 400/413/415/422, or the platform's equivalent). `fields` says which."""

    def __init__(
        self,
        message: str,
        *,
        fields: list[FieldError] | None = None,
        type: str | None = None,
        status: int | None = None,
        endpoint: str = "",
    ) -> None:
        self.fields = list(fields or [])
        super().__init__(message, type=type, status=status, endpoint=endpoint)


class PredictError(ClientError):
    """The model's predict raised: `type` is its exception class (e.g. "ValueError"), `message` its message."""


class Unavailable(ClientError):
    """No answer this time: the endpoint is busy, at capacity, starting, draining, or could not be reached."""

    retryable = True
    moves_on = True


class FailoverExhausted(Unavailable):
    """Every endpoint of a Failover failed in every round; `errors` holds what each try ended in, in order."""

    def __init__(self, message: str, *, errors: list[ClientError]) -> None:
        self.errors = list(errors)
        super().__init__(message)


class ClientTimeout(ClientError):
    """No answer in time: the client's `timeout`, or the endpoint's own limit on predict (HTTP 504, TIMED_OUT).

    Not retried on the same endpoint (the time is spent); a Failover moves on to the next one.
    """

    moves_on = True


class AuthError(ClientError):
    """The endpoint refused the credentials, or none were found; the message names the variable to set."""

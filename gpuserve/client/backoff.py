"""How long to wait before trying again: exponential backoff with jitter, never sooner than the server asked."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ClientConfigError


@dataclass(frozen=True)
class Backoff:
    """attempts: tries in all, the first included (1 turns retries off). base: the wait before the second try,
    doubled for each one after, up to cap. jitter: each wait is spread at random over +/- this fraction, so
    clients that failed together do not come back together. A Retry-After the server sent is honoured: the
    wait is never shorter (it may be longer than cap; the call's timeout still bounds it)."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 8.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        checks = [
            ("attempts", self.attempts, self.attempts >= 1, "an integer >= 1 (1: no retries)"),
            ("base", self.base, self.base >= 0, "seconds >= 0"),
            ("cap", self.cap, self.cap >= self.base, f"seconds >= base ({self.base})"),
            ("jitter", self.jitter, 0 <= self.jitter <= 1, "a fraction from 0 to 1"),
        ]
        for name, value, ok, allowed in checks:
            if not ok:
                raise ClientConfigError(f"Backoff.{name}={value!r} is not allowed. Allowed: {allowed}")

    def delay(self, attempt: int, retry_after: float | None = None, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed try number `attempt` (1-based). rand gives a number in [0, 1)."""
        wait = min(self.cap, self.base * 2.0 ** (attempt - 1))
        wait *= 1 + self.jitter * (2 * rand() - 1)
        return max(wait, retry_after) if retry_after is not None else wait


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """A Retry-After header in seconds: either form RFC 9110 allows (delta-seconds or an HTTP date); None if
    absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())

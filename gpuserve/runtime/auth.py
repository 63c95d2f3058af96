"""Bearer tokens for the HTTP server: GPUSERVE_AUTH_TOKENS, comma-separated so a new token can be rolled in."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

ENV = "GPUSERVE_AUTH_TOKENS"
MIN_TOKEN_CHARS = 16
# Probes of the platform (Docker HEALTHCHECK, Kubernetes, load balancers) carry no token.
OPEN_PATHS = frozenset({"/health"})


class AuthConfigError(ValueError):
    """GPUSERVE_AUTH_TOKENS is set but unusable; the server refuses to start rather than serve unprotected."""


class Tokens:
    """The accepted tokens; every check compares against all of them in constant time."""

    def __init__(self, tokens: list[bytes]) -> None:
        self.tokens = tokens

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Tokens | None:
        """None where GPUSERVE_AUTH_TOKENS is unset or empty (no auth). Never logs or echoes a token."""
        raw = (os.environ if env is None else env).get(ENV, "")
        if not raw.strip():
            return None
        tokens = [t.strip() for t in raw.split(",") if t.strip()]
        short = sum(1 for t in tokens if len(t) < MIN_TOKEN_CHARS)
        if short:
            raise AuthConfigError(
                f"{ENV}: {short} of {len(tokens)} token(s) are shorter than {MIN_TOKEN_CHARS} characters; "
                "use random tokens, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        if any(not t.isascii() or any(c in t for c in " \t\"'") for t in tokens):
            raise AuthConfigError(
                f"{ENV}: a token holds spaces, quotes or non-ASCII characters; use URL-safe tokens, comma-separated"
            )
        return cls([t.encode() for t in tokens])

    def allows(self, authorization: bytes | None) -> bool:
        """True for `Bearer <one of the tokens>`; the time taken does not depend on which token, or how close."""
        if authorization is None:
            return False
        scheme, _, given = authorization.partition(b" ")
        given = given.strip()
        matched = False
        for token in self.tokens:  # all of them, always: no early exit to time
            matched |= hmac.compare_digest(given, token)
        return matched and scheme.lower() == b"bearer"

"""Differences a platform makes on purpose, which no runner or adapter can remove: reported as `known`, not failed.

Each is checked, not assumed: a difference counts as known only when the platform's documented behaviour accounts
for all of it (the answer equals the one the model gives once the input is read as the platform reads it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .compare import Outcome, difference

Call = Callable[[Any], Outcome]

COG_DROPS_UNKNOWN = (
    "cog's server drops fields its schema does not declare before the model sees them (cog 0.23); "
    "the answer equals the in-process one without them"
)
COG_REFUSES_NULL = (
    "cog's server refuses null for an optional input: its validator does not read the schema's `nullable` "
    "(cog 0.23, the schema as `cog build` writes it); without the field, the target answers as in-process"
)


def explain(
    target: str, value: Any, expected: Outcome, got: Outcome, declared: set[str], calls: tuple[Call, Call]
) -> str | None:
    """Why `got` differs from `expected` by a platform's own design, or None. calls: (in-process, the target)."""
    in_process, on_target = calls
    if target != "cog" or not isinstance(value, dict):
        return None
    if expected.kind == "invalid" and got.kind == "output" and set(value) - declared:
        declared_only = {k: v for k, v in value.items() if k in declared}
        return COG_DROPS_UNKNOWN if difference(in_process(declared_only), got) is None else None
    nulls = {k for k, v in value.items() if v is None and k in declared}
    if expected.kind == "output" and got.kind == "invalid" and nulls:
        left_out = {k: v for k, v in value.items() if k not in nulls}
        return COG_REFUSES_NULL if difference(expected, on_target(left_out)) is None else None
    return None

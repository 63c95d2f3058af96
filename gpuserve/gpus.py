"""GPU names gpuserve understands, and parsing of "H100", "H100:2" and fallback lists.

The canonical names are Modal's (the most complete vocabulary); each target maps them
onto its own names and refuses the ones it does not offer.
"""

from __future__ import annotations

from dataclasses import dataclass

# Modal's GPU guide (late 2026); Modal's client (1.6.4) has no list of its own and passes names through.
GPU_TYPES: tuple[str, ...] = (
    "T4",
    "L4",
    "A10",
    "A100-40GB",
    "A100-80GB",
    "L40S",
    "RTX-PRO-6000",
    "H100",
    "H200",
    "B200",
)
# Older or shorter spellings people write; Modal calls the A10 "A10G" in older docs, and a bare "A100" is the 40 GB one.
ALIASES: dict[str, str] = {"A10G": "A10", "A100": "A100-40GB"}
MAX_GPU_COUNT = 8

_BY_UPPER = {name.upper(): name for name in GPU_TYPES} | {k.upper(): v for k, v in ALIASES.items()}


@dataclass(frozen=True)
class GpuRequest:
    """GPU types in fallback order, all with the same count per container."""

    types: tuple[str, ...]
    count: int = 1

    def __str__(self) -> str:
        suffix = f":{self.count}" if self.count > 1 else ""
        return ", ".join(f"{t}{suffix}" for t in self.types)

    @property
    def as_strings(self) -> list[str]:
        """Each type as "NAME" or "NAME:N", in fallback order."""
        suffix = f":{self.count}" if self.count > 1 else ""
        return [f"{t}{suffix}" for t in self.types]


def canonical_gpu_name(name: str) -> str | None:
    """The canonical spelling of a GPU name, or None when it is not known."""
    return _BY_UPPER.get(name.strip().upper())


def parse_gpu(value: object) -> GpuRequest | None:
    """Parse the decorator's gpu= value. Raises ValueError with a message that says what is allowed."""
    if value is None:
        return None
    if isinstance(value, GpuRequest):
        return value
    items: list[object]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
        if not items:
            raise ValueError("an empty fallback list; give at least one GPU name or None for CPU")
    else:
        raise ValueError(f"expected a GPU name, a list of names, or None, not {type(value).__name__}")
    types: list[str] = []
    counts: set[int] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected GPU names as strings, got {item!r}")
        name, _, count_text = item.partition(":")
        canonical = canonical_gpu_name(name)
        if canonical is None:
            raise ValueError(f"unknown GPU {name.strip()!r}")
        count = 1
        if count_text:
            if not count_text.strip().isdigit() or not 1 <= int(count_text) <= MAX_GPU_COUNT:
                raise ValueError(
                    f"GPU count {count_text!r} in {item!r} must be a whole number from 1 to {MAX_GPU_COUNT}"
                )
            count = int(count_text)
        if canonical in types:
            raise ValueError(f"{canonical} appears twice in the fallback list")
        types.append(canonical)
        counts.add(count)
    if len(counts) > 1:
        raise ValueError("every GPU in a fallback list must ask for the same count")
    return GpuRequest(types=tuple(types), count=counts.pop())

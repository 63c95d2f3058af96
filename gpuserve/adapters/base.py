"""The protocol every target implements, and what a render returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..loader import LoadedApp


@dataclass(frozen=True)
class RenderedTarget:
    """A build directory before it is written: rendered text files and files copied as they are."""

    files: dict[str, str]
    copies: dict[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


class Target(Protocol):
    name: str
    summary: str

    def render(self, app: LoadedApp) -> RenderedTarget:
        """Render the target's files from the app's spec. Raise BuildError for what it cannot express."""
        ...

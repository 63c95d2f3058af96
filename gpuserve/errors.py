"""One exception tree. Every message names the field, the bad value, what is allowed, and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec or an input, said so that a person can fix it."""

    field: str
    value: Any
    message: str
    allowed: str = ""
    hint: str = ""

    def render(self) -> str:
        text = f"{self.field}={self.value!r}: {self.message}"
        if self.allowed:
            text += f". Allowed: {self.allowed}"
        if self.hint:
            text += f". Fix: {self.hint}"
        return text


class GpuserveError(Exception):
    """Base of every error gpuserve raises on purpose."""


class ProblemsError(GpuserveError):
    """An error that carries every problem found, so all are reported at once."""

    def __init__(self, subject: str, problems: list[Problem]) -> None:
        self.subject = subject
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"{subject}: {count} problem{'s' if count != 1 else ''}:"]
        lines += [f"  - {p.render()}" for p in self.problems]
        super().__init__("\n".join(lines))


class SpecError(ProblemsError):
    """The @gpuserve.model options or the decorated class are not valid."""


class LoadError(GpuserveError):
    """An APP reference ("file.py:Class", "pkg.mod:Class") could not be loaded."""


class BuildError(ProblemsError):
    """A target cannot express the spec (an unsupported GPU, an option it lacks)."""


class DeployError(GpuserveError):
    """A platform refused or could not be reached while deploying."""

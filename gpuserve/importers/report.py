"""What an import decided and what it could not carry over: said line by line, printed and written into app.py.

Nothing is dropped silently. Every part of the source project lands in one of three places: the generated app
(carried), a `decided` line (gpuserve chose where the source was silent or meant something else there), or a
`not carried` line that says where it was, what it was, and what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def one_line(text: object) -> str:
    """A value as it can stand on one comment line: line breaks shown as \\n, runs of blanks kept."""
    return str(text).replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


@dataclass(frozen=True)
class Line:
    """One thing said about the import: where it was in the source, what it was, and why or what to do."""

    where: str  # "cog.yaml build.run[0]", "Dockerfile:7", "handler.py:12"
    value: str  # what was there, as it was
    why: str  # why it is not carried (and the fix), or what was decided

    def render(self) -> str:
        shown = f" {self.value!r}" if self.value else ""  # repr shows line breaks as \n: one line each
        return f"{self.where}{shown}: {one_line(self.why)}"


@dataclass
class Report:
    """The lines of one import, in the order they were found."""

    decided: list[Line] = field(default_factory=list)
    not_carried: list[Line] = field(default_factory=list)

    def decide(self, where: str, value: object, why: str) -> None:
        self.decided.append(Line(where, str(value) if value is not None else "", why))

    def skip(self, where: str, value: object, why: str) -> None:
        self.not_carried.append(Line(where, str(value) if value is not None else "", why))

    def lines(self) -> list[str]:
        """Both lists as text, headed, for the terminal and the comments at the top of app.py."""
        out: list[str] = []
        if self.decided:
            out.append(f"Decided here ({len(self.decided)}):")
            out += [f"  - {line.render()}" for line in self.decided]
        if self.not_carried:
            out.append(f"Not carried over ({len(self.not_carried)}):")
            out += [f"  - {line.render()}" for line in self.not_carried]
        else:
            out.append("Not carried over: nothing; every part of the project was carried or decided above.")
        return out

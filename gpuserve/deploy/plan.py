"""A deploy as data: the steps (render, commands, API calls), printed for --dry-run and run by the executor.

Secrets live in the plan as `Secret` values, which print masked wherever a plan or a step is shown; the executor
alone reads their values. Values only known while deploying (an endpoint id, a version) are `Later` markers, filled
from what earlier calls read.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Secret:
    """A credential or a secret environment value: printed as `<NAME: masked>`, never as itself."""

    name: str
    value: str = field(default="", repr=False, compare=False)

    def __str__(self) -> str:
        return f"<{self.name}: masked>"


@dataclass(frozen=True)
class SecretFile:
    """A JSON file of secrets ({NAME: value}) written with mode 0600 for one command, then removed."""

    secrets: tuple[Secret, ...]

    def __str__(self) -> str:
        return f"<JSON file of {', '.join(s.name for s in self.secrets)}: masked>"


@dataclass(frozen=True)
class Later:
    """A value read while deploying, under `key` (an endpoint id, a version); `what` describes it in a plan."""

    key: str
    what: str

    def __str__(self) -> str:
        return f"<{self.what}>"


Arg = str | Secret | SecretFile
Bindings = dict[str, str]
Reader = Callable[[Any], Bindings]


@dataclass(frozen=True)
class Render:
    """Write the target's directory, as `gpuserve build APP --target T -o DIR` does."""

    title: str
    app: str  # APP as the user wrote it
    target: str
    directory: str  # as the user wrote it (or the default)

    def lines(self) -> list[str]:
        return [shlex.join(["gpuserve", "build", self.app, "--target", self.target, "-o", self.directory])]


@dataclass(frozen=True)
class Command:
    """A platform tool run as a process: its output shows as progress, a non-zero exit stops the deploy."""

    title: str
    argv: tuple[Arg, ...]
    fix: str  # what to do when it fails
    cwd: str | None = None  # as displayed; run in this directory
    stdin: Secret | None = None

    def lines(self) -> list[str]:
        text = " ".join(shlex.quote(a) if isinstance(a, str) else str(a) for a in self.argv)
        if self.cwd is not None:
            text = f"cd {shlex.quote(self.cwd)} && {text}"
        if self.stdin is not None:
            text += f" < {self.stdin}"
        return [text]


@dataclass(frozen=True)
class Call:
    """One HTTP request to a platform's API, with a bearer token.

    read: what to keep from a successful answer (for later steps). absent: a status that means "not there" (the
    call then reads nothing). refusals: statuses that stop the deploy with a message that says what to do.
    """

    title: str
    method: str
    url: str  # may hold {key} for a value read earlier
    token: Secret
    body: Any = None  # JSON; may hold Later values
    read: Reader | None = field(default=None, compare=False)
    absent: int | None = None
    refusals: Mapping[int, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"{self.method} {self.url}", f"Authorization: Bearer {self.token}"]
        if self.body is not None:
            out += json.dumps(shown(self.body), indent=2).splitlines()
        return out


@dataclass(frozen=True)
class Choose:
    """Create or update: `create` runs when no earlier step found `key`, `update` when one did."""

    title: str
    key: str
    create: Call
    update: Call


Step = Render | Command | Call | Choose


@dataclass(frozen=True)
class Plan:
    """What `gpuserve deploy` does, in order, and what it checked (or could not check) first."""

    headline: str
    steps: tuple[Step, ...]
    missing: tuple[str, ...]  # preflight problems, each with its fix
    checked: tuple[str, ...]  # what preflight found in place
    notes: tuple[str, ...] = ()
    done: str = ""  # said after the last step: where the endpoint is; {key} is replaced by a value read


def fill_text(text: str, bindings: Bindings) -> str:
    """`{key}` in text replaced by the value read under key (other braces are left alone)."""
    for key, value in bindings.items():
        text = text.replace("{" + key + "}", value)
    return text


def shown(value: Any) -> Any:
    """A JSON value with its secrets masked and its Later values described: what --dry-run prints."""
    if isinstance(value, Secret | SecretFile | Later):
        return str(value)
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value


def filled(value: Any, bindings: Bindings) -> Any:
    """A JSON value with its Later values replaced by what was read, and secrets by their values."""
    if isinstance(value, Later):
        return bindings[value.key]
    if isinstance(value, Secret):
        return value.value
    if isinstance(value, dict):
        return {k: filled(v, bindings) for k, v in value.items()}
    if isinstance(value, list):
        return [filled(v, bindings) for v in value]
    return value


def render_plan(plan: Plan, dry_run: bool) -> str:
    """The plan as text: numbered steps, each with the exact command or request; then preflight."""
    out = [plan.headline + ("; dry run: nothing below runs, nothing changes." if dry_run else "."), ""]
    for number, step in enumerate(plan.steps, start=1):
        if isinstance(step, Choose):
            out.append(f"{number}. {step.title}")
            out.append(f"   {step.create.title}:")
            out += [f"     {line}" for line in step.create.lines()]
            out.append(f"   {step.update.title}:")
            out += [f"     {line}" for line in step.update.lines()]
        else:
            out.append(f"{number}. {step.title}")
            out += [f"   {line}" for line in step.lines()]
    out.append("")
    if plan.missing:
        count = len(plan.missing)
        stop = "a deploy would stop here, before step 1" if dry_run else "nothing was run"
        out.append(f"Preflight: {count} problem{'s' if count != 1 else ''} ({stop}):")
        out += [f"  - {problem}" for problem in plan.missing]
    else:
        out.append(f"Preflight: ready ({', '.join(plan.checked)}).")
    out += [f"Note: {note}" for note in plan.notes]
    return "\n".join(out) + "\n"

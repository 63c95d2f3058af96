"""The `gpuserve` command. Each subcommand lives in its own module and is imported only when run.

Errors reach the user in one place: `LazyGroup.invoke` turns every `GpuserveError` a command lets through
into `error: MESSAGE` on stderr (no traceback) and the exit status of its kind (`ExitStatus`, the table in
docs/cli.md). Anything else is a bug in the model or in gpuserve, and keeps its traceback.
"""

from __future__ import annotations

import enum
import importlib
from typing import Any, NoReturn

import click

from ..errors import BuildError, DeployError, GpuserveError, LoadError, SpecError

_COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("gpuserve.cli.serve", "Serve a model locally over HTTP (the same contract as every target)."),
    "run": ("gpuserve.cli.run", "Run one prediction in-process and print the output as JSON."),
    "inspect": ("gpuserve.cli.inspect", "Print the resolved spec and the input/output JSON schemas."),
    "build": ("gpuserve.cli.build", "Render a deployable directory for a target."),
    "test": (
        "gpuserve.cli.test",
        "Run each target with its platform's local runtime and compare its answers with the in-process model.",
    ),
    "cost": (
        "gpuserve.cli.cost",
        "Which provider is cheapest for this model and traffic, cold starts and keep-warm counted.",
    ),
    "deploy": ("gpuserve.cli.deploy", "Deploy to a platform with its own tools; --dry-run prints every step."),
    "eject": ("gpuserve.cli.eject", "Write a directory that runs the model on a platform without gpuserve."),
    "import": ("gpuserve.cli.import_", "Write a gpuserve app that wraps a cog or RunPod project's code unchanged."),
}


class ExitStatus(enum.IntEnum):
    """How `gpuserve` exits. docs/cli.md ("Exit status") documents the same table; a test checks both."""

    OK = 0
    FAILED = 1  # the model's own code raised (setup or predict)
    USAGE = 2  # bad usage or input: click's usage errors, option values, --input, price and profile files
    LOAD = 3  # LoadError: APP cannot be loaded
    SPEC = 4  # SpecError: the @gpuserve.model options or the class are not valid
    BUILD = 5  # BuildError: the target cannot express the spec, or -o is not gpuserve's to replace
    DEPLOY = 6  # DeployError: a platform refused or could not be reached
    DIFFERENT = 7  # gpuserve test: a target answered differently from the in-process model, or could not run


# Most specific first; any other GpuserveError (a bad price file, a missing optional dependency) is USAGE.
_ERROR_STATUS: tuple[tuple[type[GpuserveError], ExitStatus], ...] = (
    (LoadError, ExitStatus.LOAD),
    (SpecError, ExitStatus.SPEC),
    (BuildError, ExitStatus.BUILD),
    (DeployError, ExitStatus.DEPLOY),
    (GpuserveError, ExitStatus.USAGE),
)


def exit_status(error: GpuserveError) -> ExitStatus:
    """The exit status for an error of gpuserve's own."""
    return next(status for kind, status in _ERROR_STATUS if isinstance(error, kind))


class LazyGroup(click.Group):
    """Lists commands without importing them, so `gpuserve --help` is instant."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        command: click.Command = importlib.import_module(_COMMANDS[cmd_name][0]).command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_text) for name, (_module, help_text) in _COMMANDS.items()])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GpuserveError as exc:
            fail(exc, exit_status(exc))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gpuserve")
def main() -> None:
    """gpuserve: one model class, served the same on Modal, RunPod, Replicate, Docker and locally.

    APP is path/to/file.py:ClassName or package.module:ClassName (the class may be left out
    when the file holds one model).
    """


def fail(message: object, code: int = ExitStatus.FAILED) -> NoReturn:
    """Print `error: MESSAGE` to stderr and exit with code (one of `ExitStatus`)."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(int(code))

"""The `gpuserve` command. Each subcommand lives in its own module and is imported only when run."""

from __future__ import annotations

import importlib
from typing import Any

import click

_COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("gpuserve.cli.serve", "Serve a model locally over HTTP (the same contract as every target)."),
    "run": ("gpuserve.cli.run", "Run one prediction in-process and print the output as JSON."),
    "inspect": ("gpuserve.cli.inspect", "Print the resolved spec and the input/output JSON schemas."),
    "build": ("gpuserve.cli.build", "Render a deployable directory for a target."),
    "cost": (
        "gpuserve.cli.cost",
        "Which provider is cheapest for this model and traffic, cold starts and keep-warm counted.",
    ),
}


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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gpuserve")
def main() -> None:
    """gpuserve: one model class, served the same on Modal, RunPod, Replicate, Docker and locally.

    APP is path/to/file.py:ClassName or package.module:ClassName (the class may be left out
    when the file holds one model).
    """


def fail(message: Any, code: int = 1) -> None:
    """Print an error to stderr and exit with code."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)

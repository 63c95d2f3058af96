from __future__ import annotations

import click

from ..loader import load_app


@click.command("eject")
@click.argument("app")
@click.option("--target", "-t", required=True, type=click.Choice(["runpod", "cog", "modal", "docker"]))
@click.option("-o", "--out", "out", required=True, help="A new or empty directory to write.")
def command(app: str, target: str, out: str) -> None:
    """Write APP as plain code for a platform, with no trace of gpuserve."""
    from ..eject import eject

    result = eject(load_app(app), target, out)
    click.echo(f"{target}: wrote {len(result.files)} files to {result.directory}")
    for note in result.notes:
        click.echo(f"  note: {note}")

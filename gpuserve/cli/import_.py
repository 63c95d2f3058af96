from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..gpus import parse_gpu

if TYPE_CHECKING:
    from ..importers import Imported

_GPU_HELP = (
    "GPU for the app, e.g. L40S, H100 or H100:2. Where the project asks for a GPU without naming one "
    "(cog.yaml gpu: true, a CUDA base image), the default is L40S, which Modal, RunPod and Replicate all offer."
)


def _gpu(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_gpu(value)
        except ValueError as exc:
            raise click.BadParameter(f"{exc}; e.g. --gpu L40S") from None
    return value


@click.group("import")
def command() -> None:
    """Write a gpuserve app that wraps a cog or RunPod project's code unchanged.

    What the import decided, and what it could not carry over, is printed line by line and written as
    comments at the top of the app.
    """


@command.command("cog")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="The app file (default DIR/app.py).")
@click.option("--gpu", callback=_gpu, metavar="NAME", help=_GPU_HELP)
@click.option("--name", help="The model's name (default: cog.yaml's image name, else the directory's name).")
@click.option("--force", is_flag=True, help="Replace -o even when gpuserve import did not write it.")
def cog(directory: Path, out: Path | None, gpu: str | None, name: str | None, force: bool) -> None:
    """Import the cog project in DIRECTORY: cog.yaml and its runner (run:) or older predictor (predict:)."""
    from ..importers import import_cog

    _finish(import_cog(directory, out=out, gpu=gpu, name=name), force)


@command.command("runpod")
@click.argument("handler", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The app file (default: app.py beside HANDLER).",
)
@click.option(
    "--dockerfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The worker's Dockerfile (default: the one beside HANDLER, or in its parent directory).",
)
@click.option("--gpu", callback=_gpu, metavar="NAME", help=_GPU_HELP)
@click.option("--name", help="The model's name (default: the handler's directory's name).")
@click.option("--force", is_flag=True, help="Replace -o even when gpuserve import did not write it.")
def runpod(
    handler: Path, out: Path | None, dockerfile: Path | None, gpu: str | None, name: str | None, force: bool
) -> None:
    """Import the RunPod worker whose handler is in HANDLER (the file that calls runpod.serverless.start)."""
    from ..importers import import_runpod

    _finish(import_runpod(handler, dockerfile=dockerfile, out=out, gpu=gpu, name=name), force)


def _finish(imported: Imported, force: bool) -> None:
    path = imported.write(force=force)
    click.echo(f"wrote {path}")
    for line in imported.report.lines():
        click.echo(f"  {line}")
    click.echo(f"next: gpuserve serve {path.name} (in {path.parent}), or gpuserve build {path.name} --target all")

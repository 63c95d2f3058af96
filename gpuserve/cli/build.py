from __future__ import annotations

from pathlib import Path

import click

from ..adapters import target_names
from ..loader import load_app


@click.command("build")
@click.argument("app")
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    required=True,
    type=click.Choice([*target_names(), "all"]),
    help="Target to render; repeat it, or say all.",
)
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(path_type=Path),
    help="Output directory (default build/<target>; with several targets or all, DIR/<target>).",
)
def command(app: str, targets: tuple[str, ...], out: Path | None) -> None:
    """Render APP into a directory that deploys unchanged on a target."""
    from ..build import build

    loaded = load_app(app)
    chosen = target_names() if "all" in targets else list(dict.fromkeys(targets))
    nested = out is None or len(chosen) > 1 or "all" in targets
    base = out or Path("build")
    for target in chosen:
        directory = base / target if nested else base
        result = build(loaded, target, directory)  # a BuildError ends the command (exit status 5)
        click.echo(f"{target}: wrote {len(result.files)} files to {result.directory}")
        for note in result.notes:
            click.echo(f"  note: {note}")

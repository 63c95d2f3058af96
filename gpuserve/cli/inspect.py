from __future__ import annotations

import json

import click

from ..adapters import target_names
from ..loader import load_app


@click.command("inspect")
@click.argument("app")
@click.option(
    "--target",
    "-t",
    type=click.Choice(target_names()),
    help="Print how TARGET carries each option of APP (the platform setting and its rendered value) instead.",
)
def command(app: str, target: str | None) -> None:
    """Print APP's resolved spec and its input and output JSON schemas, or its option table for a target."""
    loaded = load_app(app)
    if target is not None:
        from ..adapters.table import markdown, option_table

        click.echo(markdown(option_table(loaded, target)), nl=False)
        return
    signature = loaded.signature
    report = {
        "app": loaded.entry,
        "spec": loaded.spec.to_json(),
        "predict": {"style": signature.style, "streaming": signature.streaming, "async": signature.is_async},
        "input_schema": signature.input_schema(),
        "output_schema": signature.output_schema(),
    }
    click.echo(json.dumps(report, indent=2))

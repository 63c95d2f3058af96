from __future__ import annotations

import json

import click

from ._app import load_or_exit


@click.command("inspect")
@click.argument("app")
def command(app: str) -> None:
    """Print APP's resolved spec and its input and output JSON schemas."""
    loaded = load_or_exit(app)
    signature = loaded.signature
    report = {
        "app": loaded.entry,
        "spec": loaded.spec.to_json(),
        "predict": {"style": signature.style, "streaming": signature.streaming, "async": signature.is_async},
        "input_schema": signature.input_schema(),
        "output_schema": signature.output_schema(),
    }
    click.echo(json.dumps(report, indent=2))

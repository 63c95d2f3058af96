from __future__ import annotations

import json
from pathlib import Path

import click

from ..loader import load_app
from . import ExitStatus, fail


@click.command("run")
@click.argument("app")
@click.option("--input", "input_json", default="{}", show_default=True, help="The input as JSON, or @file.json.")
def command(app: str, input_json: str) -> None:
    """Run one prediction of APP in-process and print its output as JSON (a stream prints as a list)."""
    from ..runtime.host import InvalidInput, ModelHost, PredictFailed

    if input_json.startswith("@"):
        try:
            text = Path(input_json[1:]).read_text()
        except OSError as exc:
            fail(f"--input {input_json}: cannot read the file ({exc.strerror or exc})", ExitStatus.USAGE)
    else:
        text = input_json
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"--input is not JSON: {exc}", ExitStatus.USAGE)
    loaded = load_app(app)
    host = ModelHost(loaded.cls)
    try:
        value = host.validate(raw)
    except InvalidInput as exc:
        fail(f"invalid input: {exc}", ExitStatus.USAGE)
    try:
        host.setup()
        output = host.predict(value)
    except PredictFailed as exc:
        fail(f"predict raised {exc}", ExitStatus.FAILED)
    finally:
        host.shutdown()
    click.echo(json.dumps(output, indent=2))

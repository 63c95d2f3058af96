from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import click

from ..loader import load_app
from . import ExitStatus, fail


@click.command("run")
@click.argument("app")
@click.option("--input", "input_json", default="{}", show_default=True, help="The input as JSON, or @file.json.")
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="NAME=PATH",
    help="A local file for the file input NAME (sent as a data: URI, as a client would send it). Repeatable.",
)
@click.option(
    "--save",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write file outputs (data: URIs) into this directory and print their paths instead.",
)
def command(app: str, input_json: str, files: tuple[str, ...], save: Path | None) -> None:
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
    if not isinstance(raw, dict):
        fail("--input must be a JSON object of the model's inputs", ExitStatus.USAGE)
    raw |= _read_files(files)
    loaded = load_app(app)
    host = ModelHost(loaded.cls)
    try:
        value = host.validate(raw)
    except InvalidInput as exc:
        fail(f"invalid input: {exc}", ExitStatus.USAGE)
    try:
        host.setup()
        output = host.predict(value)
    except InvalidInput as exc:  # a file its limits refuse
        fail(f"invalid input: {exc}", ExitStatus.USAGE)
    except PredictFailed as exc:
        fail(f"predict raised {exc}", ExitStatus.FAILED)
    finally:
        host.shutdown()
    if save is not None:
        output = _saved(output, save)
    click.echo(json.dumps(output, indent=2))


def _read_files(files: tuple[str, ...]) -> dict[str, str]:
    """--file NAME=PATH as the data: URIs a client would send; every unreadable one is named at once."""
    from ..files import guess_type

    read: dict[str, str] = {}
    problems: list[str] = []
    for item in files:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            problems.append(f"--file {item!r}: give NAME=PATH, e.g. --file image=cat.png")
            continue
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            problems.append(f"--file {item}: cannot read the file ({exc.strerror or exc})")
            continue
        read[name] = f"data:{guess_type(path)};base64,{base64.b64encode(data).decode()}"
    if problems:
        fail("\n".join(problems), ExitStatus.USAGE)
    return read


def _saved(output: Any, directory: Path) -> Any:
    """The output with each data: URI written to a file in `directory` and replaced by its path."""
    from ..conformance.compare import decode_data_uri
    from ..files import suffix_for

    directory.mkdir(parents=True, exist_ok=True)
    count = 0

    def save(value: Any) -> Any:
        nonlocal count
        decoded = decode_data_uri(value) if isinstance(value, str) and value.startswith("data:") else None
        if decoded is not None:
            count += 1
            path = directory / f"output-{count}{suffix_for(decoded.media_type)}"
            path.write_bytes(decoded.data)
            return str(path)
        if isinstance(value, list):
            return [save(item) for item in value]
        if isinstance(value, dict):
            return {key: save(item) for key, item in value.items()}
        return value

    return save(output)

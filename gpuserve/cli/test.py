from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click

from ..adapters import target_names
from ..loader import load_app
from . import ExitStatus


@click.command("test")
@click.argument("app")
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    default=("all",),
    show_default=True,
    type=click.Choice([*target_names(), "all"]),
    help="Target to check; repeat it, or say all.",
)
@click.option(
    "--inputs",
    "inputs_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A JSON list of inputs, or one JSON input per line. Default: inputs made from the input schema.",
)
def command(app: str, targets: tuple[str, ...], inputs_file: Path | None) -> None:
    """Check that every target answers APP's inputs as the model does in-process.

    Each target is built, installed in a cached virtualenv (never this environment), started with its platform's
    own local runtime on 127.0.0.1, and sent the same inputs; outputs and refusals are compared with the in-process
    answers. Exits 7 when any target differs.
    """
    from rich.console import Console
    from rich.markup import escape

    from ..conformance import inputs, report, session

    signal.signal(signal.SIGTERM, _interrupt)  # stopped from outside: stop what was started, as on Ctrl-C
    loaded = load_app(app)
    cases = inputs.from_file(inputs_file) if inputs_file else inputs.from_schema(loaded.signature.input_schema())
    chosen = target_names() if "all" in targets else list(dict.fromkeys(targets))
    console, progress = Console(), Console(stderr=True)
    with progress.status("starting") as status:

        def show(where: str, what: str) -> None:
            status.update(f"[bold]{escape(where)}[/bold]: {escape(what[:200])}")

        def log(where: str, what: str) -> None:
            progress.print(f"{escape(where)}: {escape(what)}", highlight=False)

        # A terminal shows each step and detail as it passes; a log (CI) keeps one line per step.
        step, detail = (show, show) if progress.is_terminal else (log, lambda _where, _what: None)
        result = session.run(loaded, chosen, cases, step, detail)
    report.render(result, console)
    if not result.ok:
        raise SystemExit(int(ExitStatus.DIFFERENT))


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")

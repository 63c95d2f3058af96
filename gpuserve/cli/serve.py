from __future__ import annotations

import click

from ..loader import load_app


@click.command("serve")
@click.argument("app")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Interface to bind; 0.0.0.0 to accept outside connections."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
def command(app: str, host: str, port: int, log_level: str) -> None:
    """Serve APP: GET /health, POST /predict, /openapi.json and /docs."""
    load_app(app)  # report load and spec errors before uvicorn starts
    from ..runtime.serve import serve

    serve(app, host=host, port=port, log_level=log_level)

"""Loading APP for a command. A LoadError or SpecError reaches the group, which prints it plainly (no traceback)."""

from __future__ import annotations

from ..loader import LoadedApp, load_app


def load_or_exit(ref: str) -> LoadedApp:
    """Load APP; its errors end the command with the exit status of their kind (see `gpuserve.cli.ExitStatus`)."""
    return load_app(ref)

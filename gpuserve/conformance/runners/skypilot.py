"""skypilot: the service's `run:` command, run as a process in a virtualenv of the image's requirements.

No cloud is needed: each SkyServe replica runs the Docker target's image and, in it, service.yaml's `run:` line
(`cd /app && exec python -m gpuserve.runtime ...`). Here that line (read from the file, so the file's command is
what is proven) runs from the built directory, which holds what the image's /app does, on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from ..processes import TargetDown
from .docker import ProcessRunner


def service_command(service: Path) -> list[str]:
    """The command of service.yaml's `run: cd DIR && exec COMMAND`, as gpuserve renders it."""
    try:
        run = yaml.safe_load(service.read_text())["run"]
        words = shlex.split(run)
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise TargetDown(f"{service} has no `run:` command: was it written by gpuserve build? ({exc})") from None
    if words[:1] != ["cd"] or words[2:4] != ["&&", "exec"] or len(words) < 5:
        raise TargetDown(f"{service}: `run: {run}` is not `cd DIR && exec COMMAND`; the runner does not guess")
    return words[4:]


class SkypilotRunner(ProcessRunner):
    target = "skypilot"

    def command(self, directory: Path) -> list[str]:
        return service_command(directory / "service.yaml")

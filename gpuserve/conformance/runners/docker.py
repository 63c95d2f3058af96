"""docker: the image's own CMD, run as a process in a virtualenv of its requirements.txt, bound to loopback.

No Docker engine is needed: what the image runs is `python -m gpuserve.runtime APP --host 0.0.0.0 --port 8000`
from its WORKDIR; here the same command runs from the built directory, on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..client import Client
from ..processes import TargetDown, free_port, started, wait_ready
from ..venvs import requirement_lines
from .base import Context, Endpoint
from .contract import health, predict_call

CMD = re.compile(r"^CMD (\[.*\])$", re.MULTILINE)


def image_command(dockerfile: Path) -> list[str]:
    """The exec-form CMD of a Dockerfile gpuserve rendered."""
    match = CMD.search(dockerfile.read_text())
    if match is None:
        raise TargetDown(f"{dockerfile} has no exec-form CMD: was it written by gpuserve build?")
    command: list[str] = json.loads(match.group(1))
    return command


def local_command(command: list[str], python: str, port: int) -> list[str]:
    """The image's command with this virtualenv's python, on 127.0.0.1:port."""
    local = [python if command[0] == "python" else command[0], *command[1:]]
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        if flag in local:
            local[local.index(flag) + 1] = value
        else:
            local += [flag, value]
    return local


class ProcessRunner:
    """A target whose container runs one command serving gpuserve's HTTP contract; subclasses say where it is
    written (the Dockerfile's CMD, the Deployment's container, service.yaml's `run:`), and that is what runs."""

    target = ""

    def command(self, directory: Path) -> list[str]:
        raise NotImplementedError

    def endpoints(self, streaming: bool) -> list[str]:
        return [self.target]

    def requirements(self, directory: Path) -> list[str]:
        return requirement_lines(directory / "requirements.txt")

    @contextmanager
    def serve(self, context: Context) -> Iterator[list[Endpoint]]:
        port = free_port()
        command = local_command(self.command(context.directory), context.python, port)
        log = context.work / f"{self.target}.log"
        client = Client(port, context.call_timeout)
        try:
            with started(command, context.directory, context.env, log) as proc:
                wait_ready(lambda: health(client), proc, log, context.start_timeout, f"{self.target}: GET /health")
                yield [Endpoint(self.target, predict_call(client, context.streaming))]
        finally:
            client.close()


class DockerRunner(ProcessRunner):
    target = "docker"

    def command(self, directory: Path) -> list[str]:
        return image_command(directory / "Dockerfile")

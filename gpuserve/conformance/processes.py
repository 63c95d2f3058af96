"""The processes a conformance run starts: loopback only, free ports, bounded waits, always stopped.

Output goes to a log file, not a pipe: a chatty server would fill a pipe nobody reads and stall. A process that
dies or never gets ready raises TargetDown with the end of its log, so the report can say why.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

LOG_TAIL_CHARS = 3000


class TargetDown(RuntimeError):
    """A target's process exited, or was not ready in time; the message ends with its last log lines."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(log: Path) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return text[-LOG_TAIL_CHARS:]


@contextmanager
def started(command: Sequence[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start command with its output in `log`; stop it on the way out, whatever happened (Ctrl-C included)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """SIGTERM, wait, SIGTERM again (RunPod's local API once ignored the first), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def wait_ready(check: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, timeout: float, what: str) -> float:
    """Poll check() until it is true; the seconds it took. Raises TargetDown when proc exits or time runs out."""
    started_at = time.monotonic()
    deadline = started_at + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TargetDown(f"{what}: the process exited with {proc.returncode} before it was ready:\n{log_tail(log)}")
        try:
            if check():
                return time.monotonic() - started_at
        except (OSError, http.client.HTTPException):  # not listening yet (refused, reset, half a response)
            pass
        time.sleep(0.05)
    raise TargetDown(f"{what}: not ready after {timeout:g} s:\n{log_tail(log)}")


# A container has neither: what the model imports must come from the built directory and its requirements.
LEFT_OUT = ("PYTHONPATH", "PYTHONHOME")


def child_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment a target runs with: this process's over `base` (what the image bakes in), plus extra."""
    env = {**base, **os.environ, **extra}
    for name in LEFT_OUT:
        env.pop(name, None)
    return env

"""Virtualenvs that run built targets: under gpuserve's cache directory, one per distinct set of requirements.

Never the user's environment. Each set is made once and reused, keyed by the Python it runs on and the sorted
requirement lines. A pinned torch is installed first and alone, so pip takes the CPU wheel it was told to and never
resolves a CUDA build of several GB to satisfy a later line. Progress goes to `on_step`, one line at a time.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import GpuserveError

CACHE_ENV = "GPUSERVE_VENVS"
Step = Callable[[str], None]


class VenvError(GpuserveError):
    """A virtualenv could not be made; the message holds pip's own ERROR lines (a pin that needs another Python)."""


def cache_root() -> Path:
    """$GPUSERVE_VENVS, else gpuserve's folder in the XDG cache (~/.cache/gpuserve/venvs)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpuserve" / "venvs"


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements.txt, comments and blanks dropped."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def python_of(venv: Path) -> str:
    return str(venv / "bin" / "python")


def venv_key(requirements: list[str], python: str | None = None) -> str:
    """The cache key: the interpreter's full version and the sorted, distinct requirement lines."""
    lines = sorted(set(requirements))
    return hashlib.sha256("\n".join([_version_of(python), *lines]).encode()).hexdigest()[:16]


def venv_ready(requirements: list[str], python: str | None = None, root: Path | None = None) -> bool:
    """True when venv_for would return at once: this set is installed already."""
    return ((root or cache_root()) / venv_key(requirements, python) / ".ready").exists()


def venv_for(
    requirements: list[str], python: str | None = None, root: Path | None = None, on_step: Step | None = None
) -> Path:
    """A virtualenv holding exactly these requirements (and their dependencies), made once per distinct set.

    python is the interpreter to base it on (this one when None). Concurrent callers wait on a lock file, so
    two processes never build the same one; an interrupted build leaves no `.ready` mark and is made again.
    """
    say = on_step or (lambda _line: None)
    root = root or cache_root()
    lines = sorted(set(requirements))
    key = venv_key(lines, python)
    path = root / key
    ready = path / ".ready"
    if ready.exists():
        return path
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{key}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process making {path}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return path
        shutil.rmtree(path, ignore_errors=True)
        what = f"a virtualenv of {', '.join(lines)} on Python {_version_of(python).split()[0]} in {path}"
        try:
            say(f"creating a virtualenv in {path}")
            _run([python or sys.executable, "-m", "venv", str(path)], what, say)
            (path / "requirements.txt").write_text("\n".join(lines) + "\n")
            pip = [python_of(path), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
            torch = [line for line in lines if line.startswith("torch==")]
            if torch:  # first, alone: the pinned CPU wheel, never a CUDA build pulled in by another line
                say(f"installing {torch[0]} first")
                _run([*pip, *torch], what, say)
            _run([*pip, "-r", str(path / "requirements.txt")], what, say)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        ready.write_text("\n".join(lines))
    return path


def _run(command: list[str], what: str, say: Step) -> None:
    """Run a command, passing each line it prints to `say`; raise VenvError with pip's ERROR lines."""
    output: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip())
            if line.strip():
                say(line.strip())
        code = proc.wait()
    if code != 0:
        errors = [line[:400] for line in output if line.startswith("ERROR")] or output[-30:]
        raise VenvError(f"cannot make {what}: `{' '.join(command[-3:])}` exited with {code}:\n" + "\n".join(errors))


@functools.cache
def _version_of(python: str | None) -> str:
    if python is None:
        return sys.version
    result = subprocess.run(
        [python, "-c", "import sys; print(sys.version, end='')"], capture_output=True, text=True, check=True, timeout=30
    )
    return result.stdout

"""Fresh virtualenvs for the integration tests, shared by the hash of what they install."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Outside the checkout, so clones on one machine (CI included) share them; keyed by what they hold.
CACHE = Path(
    os.environ.get("GPUSERVE_TEST_VENVS")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpuserve" / "test-venvs"
)
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements.txt, comments and blanks dropped."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def venv_for(requirements: list[str], python: str | None = None) -> Path:
    """A virtualenv holding exactly these requirements (and their dependencies), made once per distinct set.

    python is the interpreter to base it on (this one when None); its full version is part of the key.
    """
    lines = sorted(set(requirements))
    key = hashlib.sha256("\n".join([_version_of(python), *lines]).encode()).hexdigest()[:16]
    path = CACHE / key
    ready = path / ".ready"
    if ready.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return path
        shutil.rmtree(path, ignore_errors=True)
        what = f"a virtualenv of {', '.join(lines)} on Python {_version_of(python).split()[0]}"
        try:
            _run([python or sys.executable, "-m", "venv", str(path)], what)
            (path / "requirements.txt").write_text("\n".join(lines) + "\n")
            pip = [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            torch = [line for line in lines if line.startswith("torch==")]
            if torch:  # first, alone: the pinned CPU wheel on disk, never a CUDA build
                _run([*pip, *torch], what)
            _run([*pip, "-r", str(path / "requirements.txt")], what)
        except VenvError:
            shutil.rmtree(path, ignore_errors=True)
            raise
        ready.write_text("\n".join(lines))
    return path


class VenvError(RuntimeError):
    """A virtualenv could not be made; the message holds pip's own ERROR lines (a pin that needs another Python)."""


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).splitlines()
        errors = [line[:400] for line in output if line.startswith("ERROR")] or output[-30:]
        raise VenvError(
            f"cannot make {what}: `{' '.join(command[-3:])}` exited with {result.returncode}:\n" + "\n".join(errors)
        )


def python_of(venv: Path) -> str:
    return str(venv / "bin" / "python")


def find_python(version: str) -> str | None:
    """An interpreter for version ("3.10") that can make virtualenvs: pyenv's builds first, then pythonX.Y on PATH."""
    pyenv = sorted(
        PYENV_VERSIONS.glob(f"{version}.*/bin/python{version}"),
        key=lambda p: [int(part) if part.isdigit() else -1 for part in p.parts[-3].split(".")],
        reverse=True,
    )
    on_path = shutil.which(f"python{version}")
    for candidate in [*map(str, pyenv), *([on_path] if on_path else [])]:
        if _usable(candidate, version):
            return candidate
    return None


def _usable(python: str, version: str) -> bool:
    """It runs, is the version it claims, and has venv with ensurepip (Debian's python3.X may lack them)."""
    check = f"import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != {tuple(map(int, version.split('.')))})"
    try:
        return subprocess.run([python, "-c", check], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.cache
def _version_of(python: str | None) -> str:
    if python is None:
        return sys.version
    result = subprocess.run(
        [python, "-c", "import sys; print(sys.version, end='')"], capture_output=True, text=True, check=True, timeout=30
    )
    return result.stdout

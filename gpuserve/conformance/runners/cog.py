"""cog: the built directory served by cog's own server (coglet), `python -m cog.server.http`, without Docker.

The server validates against the rendered `.cog/openapi_schema.json` (what `cog build` writes) and does not read
cog.yaml: the environment `cog build` bakes into the image (cog.yaml's `environment:`, and COG_MAX_CONCURRENCY for
a runner with `@concurrent(max=N)`) is set here as the image would have it, under this process's own.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ...adapters._common import PINS
from ..client import Client
from ..compare import Outcome
from ..processes import TargetDown, free_port, started, wait_ready
from ..venvs import requirement_lines
from .base import Context, Endpoint, timed

INVALID_MARK = "invalid input:"  # how gpuserve's cog bridge words what the host refused (runtime/cog_runner.py)
AT_CAPACITY_RETRIES = 200


def baked_env(directory: Path) -> dict[str, str]:
    """What `cog build` puts in the image's environment: cog.yaml's `environment:` and COG_MAX_CONCURRENCY."""
    import yaml  # huggingface_hub's dependency, so always beside gpuserve; only this command reads YAML

    config = yaml.safe_load((directory / "cog.yaml").read_text()) or {}
    env = dict(str(line).split("=", 1) for line in config.get("environment") or [])
    concurrency = concurrent_max(directory / "runner.py")
    if concurrency > 1:
        env.setdefault("COG_MAX_CONCURRENCY", str(concurrency))
    env["COG_PREDICT_TYPE_STUB"] = str(config.get("run") or config.get("predict") or "runner.py:Runner")
    return env


def concurrent_max(runner: Path) -> int:
    """The max of `@concurrent(max=N)` on run(), read statically as `cog build` reads it (1 without one)."""
    for node in ast.walk(ast.parse(runner.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "concurrent":
            for keyword in node.keywords:
                if keyword.arg == "max":
                    return int(ast.literal_eval(keyword.value))
    return 1


class CogRunner:
    target = "cog"

    def endpoints(self, streaming: bool) -> list[str]:
        return ["cog"]

    def requirements(self, directory: Path) -> list[str]:
        return [*requirement_lines(directory / "requirements.txt"), f"cog=={PINS['cog']}"]

    @contextmanager
    def serve(self, context: Context) -> Iterator[list[Endpoint]]:
        port = free_port()
        bin_dir = str(Path(context.python).parent)
        # coglet starts its worker with the `python` found on PATH: the virtualenv's must come first.
        path = f"{bin_dir}:{context.env.get('PATH', '/usr/bin:/bin')}"
        baked = baked_env(context.directory)
        env = baked | context.env | {"PORT": str(port), "PATH": path}
        env["COG_PREDICT_TYPE_STUB"] = baked["COG_PREDICT_TYPE_STUB"]
        command = [context.python, "-m", "cog.server.http", "--host", "127.0.0.1"]
        log = context.work / "cog.log"
        client = Client(port, context.call_timeout)
        try:
            with started(command, context.directory, env, log) as proc:
                wait_ready(lambda: _ready(client), proc, log, context.start_timeout, "cog: GET /health-check READY")

                def call(value: Any) -> Outcome:
                    started_at = time.perf_counter()
                    for _ in range(AT_CAPACITY_RETRIES):
                        answer = client.post("/predictions", {"input": value})
                        if answer.status != 409:  # "At capacity": coglet frees a slot a moment after answering
                            break
                        time.sleep(0.01)
                    if answer.status == 422:
                        return timed(started_at, "invalid", message=_detail(answer.json()))
                    body = answer.json()
                    if answer.status == 200 and body.get("status") == "succeeded":
                        return timed(started_at, "output", body.get("output"))
                    error = str(body.get("error") or body)
                    if body.get("status") == "failed":
                        return timed(started_at, "invalid" if INVALID_MARK in error else "failed", message=error)
                    return timed(started_at, "error", message=f"HTTP {answer.status}: {error[:200]}")

                yield [Endpoint("cog", call)]
        finally:
            client.close()


def _ready(client: Client) -> bool:
    status = client.get("/health-check").json().get("status")
    if status == "SETUP_FAILED":
        raise TargetDown("cog: setup failed (health-check says SETUP_FAILED)")
    return bool(status == "READY")


def _detail(body: Any) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list) and detail:
        first = detail[0]
        return f"HTTP 422 {'.'.join(str(p) for p in first.get('loc', []))}: {first.get('msg')}"
    return f"HTTP 422 {str(body)[:200]}"

"""The skypilot target's YAML, read by SkyPilot's own loader (skypilot 0.14.1, in a virtualenv of its own), offline.

`sky.Task.from_yaml` parses and schema-checks each file; `validate_service_task` is the check `sky serve up` makes
before it launches anything. Every value the loader reads back is compared with the spec. The loader runs with the
network refused (a patched socket) and an empty HOME, so it proves no credentials, catalog or API server are needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from gpuserve.adapters import get_target
from gpuserve.adapters.skypilot import (
    APP_DIR,
    ASSUMED_PREDICT_SECONDS,
    DEFAULT_MAX_REPLICAS,
    QUEUE_MARGIN,
    SKYPILOT_GPUS,
)
from gpuserve.loader import LoadedApp, load_app
from tests.apps import HELLO
from tests.spec_matrix import matrix_apps, write_variant
from tests.venvs import python_of, requirement_lines, venv_for

SKYPILOT = "skypilot==0.14.1"  # pins click<8.2 and uvicorn<0.36: never gpuserve's own environment
# Beyond tests/spec_matrix.py: spot both ways, scale to zero and a warm pool, an 8-GPU replica.
EXTRA: dict[str, dict[str, Any]] = {
    "spot-prefer-fallbacks": {"gpu": ["H100", "A100-80GB"], "spot": "prefer", "keep_warm": 1, "max_containers": 4},
    "spot-only-cpu": {"spot": "only", "secrets": ["API_KEY"]},
    "spot-prefer-cpu": {"spot": "prefer", "keep_warm": 0},
    "h100-x8-warm": {"gpu": "H100:8", "keep_warm": 2, "max_containers": 2, "setup_timeout": 95, "timeout": 30},
    "concurrent-l4": {"gpu": "L4", "concurrency": 2, "idle_timeout": 60},
}

READ_BACK = r"""
import json, socket, sys

blocked = []
real_connect = socket.socket.connect


def refuse(self, address):
    host = address[0] if isinstance(address, tuple) else str(address)
    if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("/"):
        blocked.append(str(address))
        raise OSError(f"network refused in this test: {address}")
    return real_connect(self, address)


socket.socket.connect = refuse
import sky
from sky import catalog
from sky.serve import serve_utils


def resources(task):
    return [
        {
            "accelerators": r.accelerators,
            "use_spot": r.use_spot,
            "docker_image": r.extract_docker_image(),  # None unless SkyPilot reads image_id as a Docker image
            "ports": r.ports,
            "cpus": r.cpus,
        }
        for r in task.resources
    ]


out = {"common_gpus": catalog.get_common_gpus(), "files": {}}
for path in sys.argv[1:]:
    task = sky.Task.from_yaml(path)
    entry = {
        "name": task.name,
        "ordered": isinstance(task.resources, list),
        "resources": resources(task),
        "envs": task.envs,
        "secrets": [ref.name for ref in task.managed_secret_refs],
        "inline_secrets": sorted(task.secrets),
        "run": task.run,
        "workdir": task.workdir,
    }
    if task.service is not None:
        serve_utils.validate_service_task(task, pool=False)  # what `sky serve up` checks before launching
        s = task.service
        entry["service"] = {
            "readiness_path": s.readiness_path,
            "initial_delay_seconds": s.initial_delay_seconds,
            "min_replicas": s.min_replicas,
            "max_replicas": s.max_replicas,
            "target_qps_per_replica": s.target_qps_per_replica,
            "downscale_delay_seconds": s.downscale_delay_seconds,
            "dynamic_ondemand_fallback": s.dynamic_ondemand_fallback,
            "stream_timeout_seconds": s.lb_stream_timeout_seconds,
            "ports": s.ports,
        }
    out["files"][path] = entry
out["blocked"] = blocked
print(json.dumps(out))
"""


@cache
def sky_python() -> str:
    return python_of(venv_for([SKYPILOT]))


def read_back(paths: list[Path], home: Path) -> dict[str, Any]:
    """What SkyPilot's loader makes of these files, as JSON, from a process with no network and an empty HOME."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "SKYPILOT_DISABLE_USAGE_COLLECTION": "1"}
    result = subprocess.run(
        [sky_python(), "-c", READ_BACK, *map(str, paths)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    loaded: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return loaded


Read = tuple[str, LoadedApp, dict[str, Any], dict[str, Any]]  # key, app, service.yaml read back, task.yaml


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Read], dict[str, Any]]:
    directory = tmp_path_factory.mktemp("sky")
    apps = matrix_apps(directory) + [
        (key, load_app(str(write_variant(directory, key, options)))) for key, options in EXTRA.items()
    ]
    paths: list[Path] = []
    for key, app in apps:
        rendered = get_target("skypilot").render(app)
        for name in ("service.yaml", "task.yaml"):
            path = directory / "out" / key / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered.files[name])
            paths.append(path)
    home = tmp_path_factory.mktemp("home")
    back = read_back(paths, home)
    reads = [
        (
            key,
            app,
            back["files"][str(directory / "out" / key / "service.yaml")],
            back["files"][str(directory / "out" / key / "task.yaml")],
        )
        for key, app in apps
    ]
    assert len(reads) >= 20
    return reads, back


def expected_accelerators(app: LoadedApp) -> list[dict[str, int] | None]:
    """Each fallback GPU in order, under each of SkyPilot's names for it, with the spec's count; [None] for CPU."""
    gpu = app.spec.gpu
    if gpu is None:
        return [None]
    return [{name: gpu.count} for t in gpu.types if t in SKYPILOT_GPUS.names for name in SKYPILOT_GPUS.names[t]]


def test_the_loader_needed_no_network_and_no_files_in_home(loaded: tuple[list[Read], dict[str, Any]]) -> None:
    _, back = loaded
    assert back["blocked"] == []


def test_service_resources_are_the_gpu_fallbacks_in_order_with_spot(
    loaded: tuple[list[Read], dict[str, Any]],
) -> None:
    for key, app, service, _ in loaded[0]:
        spec = app.spec
        resources = service["resources"]
        assert service["ordered"] or len(resources) == 1, key  # a list: SkyPilot tries them in order
        got = [r["accelerators"] for r in resources]
        assert got == expected_accelerators(app), key
        assert {r["use_spot"] for r in resources} == {spec.spot != "off"}, key
        assert {r["ports"] == ["8000"] for r in resources} == {True}, key
        assert {r["docker_image"] for r in resources} == {f"REGISTRY/{spec.name}:TAG"}, key
        assert all(r["cpus"] == ("2+" if spec.gpu is None else None) for r in resources), key


def test_every_accelerator_name_is_one_skypilot_lists(loaded: tuple[list[Read], dict[str, Any]]) -> None:
    common = set(loaded[1]["common_gpus"])
    names = {name for names in SKYPILOT_GPUS.names.values() for name in names}
    assert names <= common, names - common
    assert set(SKYPILOT_GPUS.offered) <= common


def test_service_spec_reads_back_the_lifecycle_and_scaling(loaded: tuple[list[Read], dict[str, Any]]) -> None:
    for key, app, service, _ in loaded[0]:
        spec = app.spec
        assert service["service"] == {
            "readiness_path": "/health",
            "initial_delay_seconds": spec.setup_timeout,
            "min_replicas": spec.keep_warm,
            "max_replicas": spec.max_containers or max(spec.keep_warm, DEFAULT_MAX_REPLICAS),
            "target_qps_per_replica": spec.slots / ASSUMED_PREDICT_SECONDS,
            "downscale_delay_seconds": spec.idle_timeout,
            "dynamic_ondemand_fallback": True if spec.spot == "prefer" else None,
            "stream_timeout_seconds": spec.timeout + QUEUE_MARGIN,
            "ports": "8000",
        }, key


def test_service_runs_the_images_command_from_its_workdir(loaded: tuple[list[Read], dict[str, Any]]) -> None:
    for key, app, service, _ in loaded[0]:
        assert service["run"] == (
            f"cd {APP_DIR} && exec python -m gpuserve.runtime {app.entry} --host 0.0.0.0 --port 8000"
        ), key
        assert service["name"] == app.spec.name and service["envs"] == {}, key


def test_secrets_are_names_without_values(loaded: tuple[list[Read], dict[str, Any]]) -> None:
    with_secrets = 0
    for key, app, service, task in loaded[0]:
        for read in (service, task):
            assert read["secrets"] == list(app.spec.secrets), key
            assert read["inline_secrets"] == [], key
        with_secrets += bool(app.spec.secrets)
    assert with_secrets >= 2


def test_task_tries_each_gpu_on_spot_then_on_demand_when_preferred(
    loaded: tuple[list[Read], dict[str, Any]],
) -> None:
    spots = set()
    for key, app, _, task in loaded[0]:
        spec = app.spec
        accelerators = expected_accelerators(app)
        order = {"off": [False], "only": [True], "prefer": [True, False]}[spec.spot]
        assert task["ordered"], key
        got = [(r["accelerators"], r["use_spot"]) for r in task["resources"]]
        assert got == [(a, spot) for spot in order for a in accelerators], key
        assert (
            task["name"] == f"{spec.name}-batch"
            and task["workdir"] == "."
            and task["run"].startswith("exec python batch.py")
        ), key
        assert task["envs"] == {"INPUTS": "inputs.jsonl", "OUTPUTS": "outputs.jsonl"}, key
        spots.add(spec.spot)
    assert spots == {"off", "only", "prefer"}


def test_the_loader_refuses_mixed_spot_in_a_service(tmp_path: Path) -> None:
    """Why spot="prefer" is SkyServe's dynamic_ondemand_fallback and not `use_spot` true-then-false alternatives."""
    app = load_app(str(write_variant(tmp_path, "mixed", {"gpu": "L4", "spot": "prefer"})))
    text = get_target("skypilot").render(app).files["task.yaml"]
    service = text.replace("name:", "service:\n  readiness_probe: /health\n  replicas: 1\nname:", 1)
    path = tmp_path / "mixed.yaml"
    path.write_text(service)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "SKYPILOT_DISABLE_USAGE_COLLECTION": "1"}
    result = subprocess.run(
        [sky_python(), "-c", READ_BACK, str(path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode != 0
    assert "Resources must either all use spot or none use spot" in result.stderr


def test_batch_py_answers_each_input_line_in_order_with_its_status(tmp_path: Path) -> None:
    """task.yaml's batch run, as its replica would run it: batch.py on the image's Python, the model in its WORKDIR."""
    build = tmp_path / "build"
    built = subprocess.run(
        [sys.executable, "-m", "gpuserve.cli", "build", HELLO.ref, "--target", "skypilot", "-o", str(build)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    python = python_of(venv_for(requirement_lines(build / "requirements.txt")))
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text(json.dumps(HELLO.good) + "\n\n" + json.dumps(HELLO.bad) + "\n")
    outputs = tmp_path / "outputs.jsonl"
    result = subprocess.run(
        [python, str(build / "batch.py"), str(inputs), str(outputs), "--app-dir", str(build)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr  # one answer failed
    lines = [json.loads(line) for line in outputs.read_text().splitlines()]
    assert [(line["line"], line["status"]) for line in lines] == [(1, 200), (3, 422)]
    assert lines[0]["answer"]["output"] == HELLO.expected
    assert HELLO.bad_field in json.dumps(lines[1]["answer"])

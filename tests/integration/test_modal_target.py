"""modal: the built directory, copied away, loaded and run by the real modal SDK in a fresh virtualenv, no token."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpuserve.adapters._common import PINS
from gpuserve.gpus import GPU_TYPES
from gpuserve.loader import load_app
from tests.apps import ALL, FAULTY, LIFECYCLE, ROOT, STREAM, Case, params
from tests.integration.conftest import build_elsewhere
from tests.integration.test_runpod_target import CaseEnv, LocalOutput
from tests.proc import free_port, started, wait_until
from tests.venvs import python_of, requirement_lines, venv_for

PROBE = ROOT / "tests" / "modal_probe.py"
ModalDir = tuple[Case, Path, str, dict[str, str]]
DRIVER = ROOT / "tests" / "modal_driver.py"


def offline_env(base: dict[str, str], home: Path) -> dict[str, str]:
    """No Modal token anywhere: an empty HOME and no MODAL_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")} | base
    return env | {"HOME": str(home), "PATH": "/usr/bin:/bin"}


def run(python: str, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture
def modal_dir(request: pytest.FixtureRequest, tmp_path: Path, case_env: CaseEnv) -> ModalDir:
    case: Case = request.param
    directory = build_elsewhere(case, "modal", tmp_path)
    venv = venv_for([*requirement_lines(directory / "requirements.txt"), f"modal=={PINS['modal']}"])
    home = tmp_path / "home"
    home.mkdir()
    env = offline_env(case_env(case) | {"LIFECYCLE_LOG": str(tmp_path / "lifecycle.log")}, home)
    return case, directory, python_of(venv), env


@pytest.mark.parametrize("modal_dir", params(ALL), indirect=True)
def test_modal_app_loads_registers_the_spec_and_runs(
    modal_dir: ModalDir, local_output: LocalOutput, tmp_path: Path
) -> None:
    case, directory, python, env = modal_dir
    spec = load_app(case.ref).spec
    imported = run(python, ["-c", "import modal_app"], directory, env)
    assert imported.returncode == 0, imported.stderr

    probe = run(python, [str(PROBE), spec.class_name], directory, env)
    assert probe.returncode == 0, probe.stderr
    registered = json.loads(probe.stdout)
    gpu: Any = (
        None if spec.gpu is None else (spec.gpu.as_strings[0] if len(spec.gpu.types) == 1 else spec.gpu.as_strings)
    )
    assert registered["app_name"] == spec.name
    assert registered["gpu"] == gpu
    assert registered["min_containers"] == spec.keep_warm
    assert registered["max_containers"] == spec.max_containers
    assert registered["scaledown_window"] == spec.idle_timeout
    assert registered["timeout"] == spec.timeout
    assert registered["startup_timeout"] == spec.setup_timeout
    assert registered["max_concurrent_inputs"] == (spec.slots if spec.slots > 1 else None)  # batched: groups
    assert registered["secrets"] == len(spec.secrets)
    info = registered["info"]  # the class service function's own view
    assert info["gpus"] == ([[t, spec.gpu.count] for t in spec.gpu.types] if spec.gpu else [])
    assert info["timeout"] == spec.timeout
    assert info["secrets"] == [f"modal.Secret.from_name({s!r})" for s in spec.secrets]
    assert info["method_names"] == ["predict", "web"]

    called = run(python, [str(DRIVER), "predict", spec.class_name, json.dumps(case.good)], directory, env)
    assert called.returncode == 0, called.stderr
    first, second = (json.loads(line) for line in called.stdout.splitlines()[-2:])
    assert first == local_output(case)
    if case is FAULTY:
        assert second == {"calls": 2}  # the same instance answered both calls: setup ran once
    else:
        assert second == first
    invalid = run(python, [str(DRIVER), "invalid", spec.class_name, json.dumps(case.bad)], directory, env)
    assert invalid.returncode == 3, invalid.stdout + invalid.stderr
    assert f"InvalidInput: input.{case.bad_field}:" in invalid.stdout

    help_run = subprocess.run(
        [str(Path(python).parent / "modal"), "run", f"modal_app.py::{spec.class_name}.predict", "--help"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert help_run.returncode == 0, help_run.stderr
    assert "Usage: modal run" in help_run.stdout


@pytest.mark.parametrize("modal_dir", [LIFECYCLE], ids=lambda c: c.key, indirect=True)
def test_setup_runs_once_and_preemption_runs_shutdown(modal_dir: ModalDir, tmp_path: Path) -> None:
    case, directory, python, env = modal_dir
    log = tmp_path / "lifecycle.log"
    run(python, [str(DRIVER), "predict", "Lifecycle", json.dumps({"tag": "a"})], directory, env)
    assert [line.split()[0] for line in log.read_text().splitlines()][:1] == ["setup"]
    assert log.read_text().count("setup") == 1  # two calls, one setup
    log.unlink()
    preempted = run(
        python, [str(DRIVER), "preempt", "Lifecycle", json.dumps({"seconds": 10, "tag": "p"})], directory, env
    )
    assert preempted.returncode != 0 and "preempted" in preempted.stdout, preempted.stdout + preempted.stderr
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["setup", "shutdown"]


@pytest.mark.parametrize("modal_dir", params([c for c in ALL if c is not LIFECYCLE]), indirect=True)
def test_web_endpoint_serves_the_http_contract(modal_dir: ModalDir, local_output: LocalOutput) -> None:
    case, directory, python, env = modal_dir
    port = free_port()
    spec = load_app(case.ref).spec
    with (
        started([python, str(DRIVER), "serve", spec.class_name, str(port)], directory, env) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
    ):
        wait_until(lambda: client.get("/health").status_code == 200, 90, "modal web endpoint", proc)
        good = client.post("/predict", json={"input": case.good})
        assert good.status_code == 200 and good.json()["output"] == local_output(case)
        bad = client.post("/predict", json={"input": case.bad})
        assert bad.status_code == 422 and [d["loc"][-1] for d in bad.json()["detail"]] == [case.bad_field]
        assert client.get("/openapi.json").json()["info"]["title"] == spec.name
        if case is STREAM:
            with client.stream(
                "POST", "/predict", json={"input": {"count": 2}}, headers={"Accept": "text/event-stream"}
            ) as response:
                assert "".join(response.iter_text()).startswith('data: "alpha "\n\ndata: "beta "\n\nevent: done')


PROBED_SPECS: dict[str, dict[str, Any]] = {
    **{f"gpu-{name.lower()}": {"gpu": name} for name in GPU_TYPES},
    "fallback-a10-l4": {"gpu": ["A10", "L4"]},
    "rtx-pro-6000-x2": {"gpu": "RTX-PRO-6000:2"},
    "a100-40gb-alias": {"gpu": "A100"},
    "cpu-short-setup": {"setup_timeout": 120, "timeout": 30, "keep_warm": 1, "max_containers": 2},
}


@pytest.mark.parametrize("key", sorted(PROBED_SPECS))
def test_modal_registers_gpu_names_and_startup_timeout(key: str, tmp_path: Path) -> None:
    """Across GPUs, counts, fallbacks and timeouts, what Modal registers is what the spec says, in Modal's names."""
    from gpuserve.build import build
    from tests.spec_matrix import write_variant

    source = write_variant(tmp_path, key, PROBED_SPECS[key])
    app = load_app(str(source))
    directory = build(app, "modal", tmp_path / "modal").directory
    venv = venv_for([*requirement_lines(directory / "requirements.txt"), f"modal=={PINS['modal']}"])
    home = tmp_path / "home"
    home.mkdir()
    probe = run(python_of(venv), [str(PROBE), "Variant"], directory, offline_env({}, home))
    assert probe.returncode == 0, probe.stderr
    registered = json.loads(probe.stdout)
    spec = app.spec
    expected_gpu = {
        **{f"gpu-{name.lower()}": name for name in GPU_TYPES},
        "fallback-a10-l4": ["A10", "L4"],
        "rtx-pro-6000-x2": "RTX-PRO-6000:2",
        "a100-40gb-alias": "A100-40GB",
        "cpu-short-setup": None,
    }[key]
    assert registered["gpu"] == expected_gpu
    assert registered["startup_timeout"] == spec.setup_timeout and registered["timeout"] == spec.timeout
    assert (registered["min_containers"], registered["max_containers"]) == (spec.keep_warm, spec.max_containers)

"""What each target makes of the spec: GPU names, settings, and what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpuserve.adapters import get_target
from gpuserve.errors import BuildError
from gpuserve.loader import LoadedApp, load_app
from tests.apps import ASYNC, HELLO, LIFECYCLE, TEXT


def app_with(tmp_path: Path, options: str, name: str = "custom") -> LoadedApp:
    source = tmp_path / f"{name}.py"
    source.write_text(f"import gpuserve\n\n@gpuserve.model({options})\nclass Custom:\n    def predict(self, x: int = 1) -> int:\n        return x\n")
    return load_app(str(source))


def test_runpod_endpoint_settings_follow_the_spec() -> None:
    rendered = get_target("runpod").render(load_app(LIFECYCLE.ref))
    endpoint = json.loads(rendered.files["endpoint.json"])
    assert endpoint["workersMin"] == 1 and endpoint["workersMax"] == 3
    assert endpoint["idleTimeout"] == 120 and endpoint["executionTimeoutMs"] == 60_000
    assert endpoint["gpuTypeIds"] == ["NVIDIA L40S"] and endpoint["gpuCount"] == 1 and endpoint["flashboot"] is True
    assert endpoint["env"] == {"API_KEY": "{{ RUNPOD_SECRET_API_KEY }}"}
    assert json.loads(rendered.files["template.json"])["env"] == {"API_KEY": "{{ RUNPOD_SECRET_API_KEY }}"}


def test_runpod_gpu_variants_fallbacks_and_cpu(tmp_path: Path) -> None:
    endpoint = json.loads(get_target("runpod").render(load_app(ASYNC.ref)).files["endpoint.json"])
    assert endpoint["gpuTypeIds"] == ["NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H100 NVL", "NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB"]
    rendered = get_target("runpod").render(load_app(TEXT.ref))
    assert json.loads(rendered.files["endpoint.json"])["gpuTypeIds"] == ["NVIDIA L4", "NVIDIA L40S"]
    assert rendered.notes == ("RunPod has no A10G; it was dropped from the fallback list",)
    cpu = json.loads(get_target("runpod").render(load_app(HELLO.ref)).files["endpoint.json"])
    assert cpu["computeType"] == "CPU" and "gpuTypeIds" not in cpu
    two = json.loads(get_target("runpod").render(app_with(tmp_path, 'gpu="H200:2"')).files["endpoint.json"])
    assert (two["gpuTypeIds"], two["gpuCount"]) == (["NVIDIA H200"], 2)


def test_runpod_refuses_a_gpu_it_does_not_offer(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        get_target("runpod").render(app_with(tmp_path, 'gpu="A10G"'))
    message = str(info.value)
    assert "gpu='A10G': RunPod offers none of these GPUs. Allowed: L4, A100-80GB, L40S, H100, H200, B200 (on RunPod: NVIDIA L4" in message
    assert 'Fix: pick one of those, or list fallbacks, e.g. gpu=["A10G", "L4"]' in message

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
    source.write_text(
        f"import gpuserve\n\n@gpuserve.model({options})\nclass Custom:\n    def predict(self, x: int = 1) -> int:\n        return x\n"
    )
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
    assert endpoint["gpuTypeIds"] == [
        "NVIDIA H100 80GB HBM3",
        "NVIDIA H100 PCIe",
        "NVIDIA H100 NVL",
        "NVIDIA A100 80GB PCIe",
        "NVIDIA A100-SXM4-80GB",
    ]
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
    assert (
        "gpu='A10G': RunPod offers none of these GPUs. Allowed: L4, A100-80GB, L40S, H100, H200, B200 (on RunPod: NVIDIA L4"
        in message
    )
    assert 'Fix: pick one of those, or list fallbacks, e.g. gpu=["A10G", "L4"]' in message


def test_cog_inputs_carry_constraints_and_choices() -> None:
    rendered = get_target("cog").render(load_app(TEXT.ref))
    runner = rendered.files["runner.py"]
    assert "prompt: str = Input(description='Text to continue', min_length=1, max_length=4000)," in runner
    assert "max_new_tokens: int = Input(description='How many tokens to add', default=32, ge=1, le=512)," in runner
    assert "class Output(BaseModel):\n    text: str\n    tokens: int\n" in runner
    schema = json.loads(rendered.files[".cog/openapi_schema.json"])["components"]["schemas"]
    assert schema["Input"]["required"] == ["prompt"]
    assert schema["Input"]["properties"]["max_new_tokens"] == {
        "x-order": 1, "title": "Max New Tokens", "type": "integer", "default": 32, "minimum": 1, "maximum": 512, "description": "How many tokens to add",
    }  # fmt: skip
    assert schema["Output"]["required"] == ["text", "tokens"]
    hello = get_target("cog").render(load_app(HELLO.ref))
    hello_schema = json.loads(hello.files[".cog/openapi_schema.json"])["components"]["schemas"]
    assert hello_schema["Input"]["properties"]["language"] == {
        "x-order": 1,
        "allOf": [{"$ref": "#/components/schemas/Language"}],
        "default": "en",
    }
    assert hello_schema["Language"]["enum"] == ["en", "fr", "es"]
    assert "language: str = Input(default='en', choices=['en', 'fr', 'es'])," in hello.files["runner.py"]


def test_cog_streaming_and_concurrency_forms() -> None:
    from tests.apps import STREAM

    rendered = get_target("cog").render(load_app(STREAM.ref))
    assert "    @concurrent(max=2)\n    async def run(" in rendered.files["runner.py"]
    assert ") -> AsyncConcatenateIterator[str]:" in rendered.files["runner.py"]
    schema = json.loads(rendered.files[".cog/openapi_schema.json"])
    assert schema["paths"]["/predictions"]["post"]["x-cog-streaming"] is True
    assert schema["components"]["schemas"]["Output"]["x-cog-array-display"] == "concatenate"
    assert "concurrency:\n  max: 2\n" in rendered.files["cog.yaml"]


def test_cog_deployment_and_hardware(tmp_path: Path) -> None:
    deployment = json.loads(get_target("cog").render(load_app(LIFECYCLE.ref)).files["deployment.json"])
    assert (deployment["hardware"], deployment["min_instances"], deployment["max_instances"]) == ("gpu-l40s", 1, 3)
    assert json.loads(get_target("cog").render(load_app(HELLO.ref)).files["deployment.json"])["hardware"] == "cpu"
    assert (
        json.loads(get_target("cog").render(app_with(tmp_path, 'gpu="A100-80GB:2"', "two")).files["deployment.json"])[
            "hardware"
        ]
        == "gpu-a100-large-2x"
    )
    with pytest.raises(
        BuildError,
        match=r"gpu='L4': Replicate offers none of these GPUs. Allowed: T4, A100-80GB, L40S, H100 \(on Replicate: cpu, gpu-t4",
    ):
        get_target("cog").render(app_with(tmp_path, 'gpu="L4"', "l4"))
    with pytest.raises(BuildError, match="Replicate has no such multi-GPU hardware"):
        get_target("cog").render(app_with(tmp_path, 'gpu="H100:8"', "eight"))


def test_cog_refuses_inputs_it_cannot_express(tmp_path: Path) -> None:
    source = tmp_path / "nested.py"
    source.write_text(
        "from pydantic import BaseModel\nimport gpuserve\n\n"
        "class Box(BaseModel):\n    w: int\n\n"
        "@gpuserve.model\nclass Nested:\n"
        "    def predict(self, box: Box, scale: float = 1.0, tags: dict[str, str] | None = None) -> int:\n        return box.w\n"
    )
    with pytest.raises(BuildError) as info:
        get_target("cog").render(load_app(str(source)))
    assert [p.field for p in info.value.problems] == ["predict(box)", "predict(tags)"]
    assert "cog inputs cannot be objects, nested models or unions" in str(info.value)


def test_modal_options_follow_the_spec() -> None:
    from tests.apps import STREAM

    app_file = get_target("modal").render(load_app(LIFECYCLE.ref)).files["modal_app.py"]
    assert (
        "    gpu='L40S',\n    min_containers=1,\n    max_containers=3,\n    scaledown_window=120,\n    timeout=60,\n"
        in app_file
    )
    assert "secrets=[modal.Secret.from_name('API_KEY')]," in app_file
    assert "@modal.concurrent(max_inputs=2)\nclass Lifecycle:" in app_file
    fallback = get_target("modal").render(load_app(ASYNC.ref)).files["modal_app.py"]
    assert "gpu=['H100', 'A100-80GB']," in fallback
    hello = get_target("modal").render(load_app(HELLO.ref))
    assert "gpu=None," in hello.files["modal_app.py"]
    assert (
        "def predict(\n        self,\n        *,\n        name: str,\n        language: str = 'en',\n        excited: bool = False,\n    ) -> Any:"
        in hello.files["modal_app.py"]
    )
    assert (
        "yield from self.host.stream(inputs)" in get_target("modal").render(load_app(STREAM.ref)).files["modal_app.py"]
    )
    for removed in (
        "keep_warm",
        "concurrency_limit",
        "container_idle_timeout",
        "allow_concurrent_inputs",
        "web_endpoint",
        "modal.gpu.",
    ):
        assert removed not in hello.files["modal_app.py"]


def test_modal_says_what_means_something_else_there() -> None:
    notes = get_target("modal").render(load_app(TEXT.ref)).notes
    assert notes == (
        "secret HF_TOKEN: create a Modal secret named HF_TOKEN holding the key HF_TOKEN (`modal secret create HF_TOKEN HF_TOKEN=...`)",
    )
    assert get_target("modal").render(load_app(ASYNC.ref)).notes == (
        "max_containers is unset: Modal scales without an upper bound",
    )


@pytest.mark.parametrize("target", ["docker", "runpod"])
def test_dockerfile_installs_dependencies_before_copying_code(target: str) -> None:
    lines = get_target(target).render(load_app(TEXT.ref)).files["Dockerfile"].splitlines()
    index = {line: i for i, line in enumerate(lines)}
    assert (
        index["COPY requirements.txt ./"]
        < index["RUN pip install --no-cache-dir -r requirements.txt"]
        < index["COPY app.py ./app.py"]
    )
    assert lines[2].startswith("FROM nvidia/cuda:12.4.1-cudnn-runtime")  # a GPU model gets a CUDA base
    assert (
        get_target(target).render(load_app(HELLO.ref)).files["Dockerfile"].splitlines()[2]
        == "FROM python:3.11-slim-bookworm"
    )
    if target == "docker":
        assert "USER 1000" in lines and any(line.startswith("HEALTHCHECK ") for line in lines)
        assert (
            lines[-1]
            == 'CMD ["python", "-m", "gpuserve.runtime", "app:TextGeneration", "--host", "0.0.0.0", "--port", "8000"]'
        )
    else:
        assert lines[-1] == 'CMD ["python", "-u", "handler.py"]'

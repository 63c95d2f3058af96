"""What each target makes of the spec: values read back from the rendered files, GPU names, and refusals.

The rendered text itself is pinned once, by the golden files; these tests parse the files and check
that the spec's values land where the platform reads them.
"""

from __future__ import annotations

import ast
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpuserve.adapters import get_target
from gpuserve.build import build
from gpuserve.errors import BuildError
from gpuserve.loader import LoadedApp, load_app
from tests.apps import ASYNC, HELLO, LIFECYCLE, STREAM, TEXT


def app_with(tmp_path: Path, options: str, name: str = "custom") -> LoadedApp:
    source = tmp_path / f"{name}.py"
    source.write_text(
        f"import gpuserve\n\n@gpuserve.model({options})\nclass Custom:\n"
        "    def predict(self, x: int = 1) -> int:\n        return x\n"
    )
    return load_app(str(source))


def endpoint(app: LoadedApp) -> dict[str, Any]:
    return json.loads(get_target("runpod").render(app).files["endpoint.json"])  # type: ignore[no-any-return]


def test_runpod_endpoint_follows_the_spec() -> None:
    body = endpoint(load_app(LIFECYCLE.ref))
    assert body["workers"] == {"min": 1, "max": 3, "idleTimeout": 120}
    assert body["timeout"] == 60_000 and body["type"] == "QUEUE" and body["flashboot"] == "FLASHBOOT"
    assert body["gpu"]["pools"] == ["ADA_48_PRO"] and body["gpu"]["count"] == 1
    assert body["env"] == {"API_KEY": "{{ RUNPOD_SECRET_API_KEY }}"}


def test_runpod_gpu_pools_fallbacks_and_cpu(tmp_path: Path) -> None:
    assert endpoint(load_app(ASYNC.ref))["gpu"]["pools"] == ["ADA_80_PRO", "AMPERE_80"]
    rendered = get_target("runpod").render(load_app(TEXT.ref))
    gpu = json.loads(rendered.files["endpoint.json"])["gpu"]
    assert gpu["pools"] == ["AMPERE_24", "ADA_48_PRO"]
    assert "NVIDIA L4" not in gpu["excludedTypes"] and "NVIDIA L40S" not in gpu["excludedTypes"]
    assert "RunPod has no A10; it was dropped from the fallback list" in rendered.notes
    cpu = endpoint(load_app(HELLO.ref))
    assert cpu["cpu"] == [{"id": "cpu5c", "vcpuCount": 4}] and "gpu" not in cpu
    two = endpoint(app_with(tmp_path, 'gpu="H200:2"'))["gpu"]
    assert (two["pools"], two["count"]) == (["HOPPER_141"], 2)


def test_runpod_cuda_floor_follows_torch_and_gpus(tmp_path: Path) -> None:
    assert endpoint(load_app(TEXT.ref))["gpu"]["minCudaVersion"] == "13.0"  # torch==2.13.0
    assert endpoint(app_with(tmp_path, 'gpu="B200"', "b200"))["gpu"]["minCudaVersion"] == "12.8"
    assert endpoint(app_with(tmp_path, 'gpu="L4"', "l4"))["gpu"]["minCudaVersion"] == "12.4"


def test_unknown_torch_gets_a_note_not_a_guess(tmp_path: Path) -> None:
    app = app_with(tmp_path, 'gpu="L4", image=gpuserve.Image().pip_install("torch>=2")', "loose")
    notes = get_target("docker").render(app).notes
    assert any(n.startswith("an unpinned torch: gpuserve does not know which CUDA") for n in notes), notes


def test_runpod_refuses_a_gpu_it_does_not_offer(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        get_target("runpod").render(app_with(tmp_path, 'gpu="A10"'))
    (problem,) = info.value.problems
    assert (problem.field, problem.value) == ("gpu", "A10")
    assert "RunPod offers none of these GPUs" in problem.message
    assert "AMPERE_24" in problem.allowed and "gpuserve build --target runpod" in str(info.value)


def test_cog_inputs_carry_constraints_and_choices() -> None:
    rendered = get_target("cog").render(load_app(TEXT.ref))
    schema = json.loads(rendered.files[".cog/openapi_schema.json"])["components"]["schemas"]
    assert schema["Input"]["required"] == ["prompt"]
    assert schema["Input"]["properties"]["max_new_tokens"] | {"description": ""} == {
        "x-order": 1,
        "title": "Max New Tokens",
        "type": "integer",
        "default": 32,
        "minimum": 1,
        "maximum": 512,
        "description": "",
    }
    hello = get_target("cog").render(load_app(HELLO.ref))
    hello_schema = json.loads(hello.files[".cog/openapi_schema.json"])["components"]["schemas"]
    assert hello_schema["Language"]["enum"] == ["en", "fr", "es"]
    run = next(n for n in ast.walk(ast.parse(hello.files["runner.py"])) if isinstance(n, ast.AsyncFunctionDef))
    language = run.args.defaults[1]
    assert isinstance(language, ast.Call)
    assert {k.arg: ast.literal_eval(k.value) for k in language.keywords} == {
        "default": "en",
        "choices": ["en", "fr", "es"],
    }


def test_cog_concurrency_lives_on_the_decorator() -> None:
    rendered = get_target("cog").render(load_app(STREAM.ref))
    tree = ast.parse(rendered.files["runner.py"])
    run = next(n for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef) and n.name == "run")
    (decorator,) = run.decorator_list
    assert isinstance(decorator, ast.Call) and ast.literal_eval(decorator.keywords[0].value) == 2
    assert "concurrency" not in yaml.safe_load(rendered.files["cog.yaml"])
    schema = json.loads(rendered.files[".cog/openapi_schema.json"])
    assert schema["paths"]["/predictions"]["post"]["x-cog-streaming"] is True


def test_cog_yaml_carries_cuda_and_setup_timeout() -> None:
    config = yaml.safe_load(get_target("cog").render(load_app(TEXT.ref)).files["cog.yaml"])
    assert config["build"]["cuda"] == "13.0"
    assert "COG_SETUP_TIMEOUT=1800" in config["environment"]
    assert "cuda" not in yaml.safe_load(get_target("cog").render(load_app(HELLO.ref)).files["cog.yaml"])["build"]


def test_cog_deployment_and_hardware(tmp_path: Path) -> None:
    def deployment(app: LoadedApp) -> dict[str, Any]:
        return json.loads(get_target("cog").render(app).files["deployment.json"])  # type: ignore[no-any-return]

    lifecycle = deployment(load_app(LIFECYCLE.ref))
    assert (lifecycle["hardware"], lifecycle["min_instances"], lifecycle["max_instances"]) == ("gpu-l40s", 1, 3)
    assert deployment(load_app(HELLO.ref))["hardware"] == "cpu"
    assert deployment(app_with(tmp_path, 'gpu="A100-80GB:2"', "two"))["hardware"] == "gpu-a100-large-2x"
    with pytest.raises(BuildError, match=r"gpu='L4': Replicate offers none of these GPUs") as info:
        get_target("cog").render(app_with(tmp_path, 'gpu="L4"', "l4"))
    assert "gpuserve build --target cog" in str(info.value) and "--target replicate" not in str(info.value)
    with pytest.raises(BuildError, match="Replicate has no such multi-GPU hardware"):
        get_target("cog").render(app_with(tmp_path, 'gpu="H100:8"', "eight"))


def test_cog_refuses_inputs_it_cannot_express(tmp_path: Path) -> None:
    source = tmp_path / "nested.py"
    source.write_text(
        "from pydantic import BaseModel\nimport gpuserve\n\n"
        "class Box(BaseModel):\n    w: int\n\n"
        "@gpuserve.model\nclass Nested:\n"
        "    def predict(\n        self, box: Box, scale: float = 1.0, tags: dict[str, str] | None = None\n"
        "    ) -> int:\n        return box.w\n"
    )
    with pytest.raises(BuildError) as info:
        get_target("cog").render(load_app(str(source)))
    assert [p.field for p in info.value.problems] == ["predict(box)", "predict(tags)"]
    assert "cog inputs cannot be objects, nested models or unions" in str(info.value)


def cls_options(source: str) -> dict[str, Any]:
    tree = ast.parse(source)
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "cls")
    return {k.arg: ast.unparse(k.value) for k in call.keywords if k.arg}


def test_modal_options_follow_the_spec() -> None:
    options = cls_options(get_target("modal").render(load_app(LIFECYCLE.ref)).files["modal_app.py"])
    assert options["gpu"] == "'L40S'" and options["min_containers"] == "1" and options["max_containers"] == "3"
    assert (options["scaledown_window"], options["timeout"], options["startup_timeout"]) == ("120", "60", "1800")
    assert options["secrets"] == "[modal.Secret.from_name('API_KEY')]"
    assert cls_options(get_target("modal").render(load_app(ASYNC.ref)).files["modal_app.py"])["gpu"] == (
        "['H100', 'A100-80GB']"
    )
    assert cls_options(get_target("modal").render(load_app(TEXT.ref)).files["modal_app.py"])["gpu"] == (
        "['A10', 'L4', 'L40S']"  # Modal's current name for the A10G
    )
    hello = get_target("modal").render(load_app(HELLO.ref)).files["modal_app.py"]
    for removed in ("keep_warm", "concurrency_limit", "container_idle_timeout", "allow_concurrent_inputs"):
        assert removed not in hello
    assert "web_endpoint" not in hello and "modal.gpu." not in hello


def test_modal_says_what_means_something_else_there() -> None:
    notes = get_target("modal").render(load_app(TEXT.ref)).notes
    assert notes == (
        "secret HF_TOKEN: create a Modal secret named HF_TOKEN holding the key HF_TOKEN "
        "(`modal secret create HF_TOKEN HF_TOKEN=...`)",
    )
    assert get_target("modal").render(load_app(ASYNC.ref)).notes == (
        "max_containers is unset: Modal scales without an upper bound",
    )


@pytest.mark.parametrize("target", ["docker", "runpod"])
def test_dockerfile_installs_dependencies_before_copying_code(target: str) -> None:
    lines = get_target(target).render(load_app(TEXT.ref)).files["Dockerfile"].splitlines()
    index = {line: i for i, line in enumerate(lines)}
    assert index["COPY requirements.txt ./"] < index["RUN pip install --no-cache-dir -r requirements.txt"]
    assert index["RUN pip install --no-cache-dir -r requirements.txt"] < index["COPY app.py ./app.py"]
    assert lines[2] == "FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04"  # torch 2.13.0 wheels need CUDA 13
    hello = get_target(target).render(load_app(HELLO.ref)).files["Dockerfile"].splitlines()
    assert hello[2] == "FROM python:3.11-slim-bookworm"


def app_with_helpers(tmp_path: Path) -> LoadedApp:
    """A model file that imports a local package, which also holds a script in Python 2 that nothing imports."""
    (tmp_path / "helpers").mkdir(parents=True)
    (tmp_path / "helpers" / "__init__.py").write_text("def double(x: int) -> int:\n    return 2 * x\n")
    (tmp_path / "helpers" / "legacy.py").write_text("print 'never imported'\n")
    source = tmp_path / "compiled_app.py"
    source.write_text(
        "import gpuserve\nfrom helpers import double\n\n@gpuserve.model()\nclass Doubler:\n"
        "    def predict(self, x: int = 1) -> int:\n        return double(x)\n"
    )
    return load_app(str(source))


def run_compile_step(directory: Path) -> None:
    """The Dockerfile's compile step, as `docker build` runs it, with this Python for the image's."""
    lines = (directory / "Dockerfile").read_text().splitlines()
    step = next(line for line in lines if "compileall" in line).removeprefix("RUN ")
    step = step.replace("python -m compileall", f"{shlex.quote(sys.executable)} -m compileall")
    subprocess.run(["sh", "-c", step], cwd=directory, check=True)


@pytest.mark.parametrize("target", ["docker", "runpod"])
def test_dockerfile_compiles_every_module_it_copies_that_compiles(target: str, tmp_path: Path) -> None:
    """The image sets PYTHONDONTWRITEBYTECODE: bytecode left out of it is compiled again at each start."""
    out = tmp_path / "build"
    build(app_with_helpers(tmp_path / "src"), target, out)
    run_compile_step(out)  # check=True: the Python 2 script does not stop the build
    lines = (out / "Dockerfile").read_text().splitlines()
    command = json.loads(next(line for line in lines if line.startswith("CMD ")).removeprefix("CMD "))
    modules = {str(path.relative_to(out)) for path in out.rglob("*.py")} - set(command)
    assert {"compiled_app.py", "helpers/__init__.py", "helpers/legacy.py", "gpuserve/runtime/host.py"} <= modules
    tag = sys.implementation.cache_tag
    uncompiled = {
        m for m in modules if not (out / m).parent.joinpath("__pycache__", f"{Path(m).stem}.{tag}.pyc").exists()
    }
    assert uncompiled == {"helpers/legacy.py"}


def test_docker_healthcheck_waits_for_setup() -> None:
    dockerfile = get_target("docker").render(load_app(LIFECYCLE.ref)).files["Dockerfile"]
    assert "--start-period=1800s" in dockerfile and "USER 1000" in dockerfile.splitlines()

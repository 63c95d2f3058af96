from __future__ import annotations

import pytest

import gpuserve
from gpuserve.gpus import GpuRequest, parse_gpu
from gpuserve.spec import ModelSpec, default_name


@pytest.mark.parametrize(
    ("value", "types", "count"),
    [
        ("H100", ("H100",), 1),
        ("h100:2", ("H100",), 2),
        ("a100-80gb", ("A100-80GB",), 1),
        ("A100-40GB", ("A100-40GB",), 1),
        ("A100", ("A100-40GB",), 1),
        ("a10g", ("A10",), 1),
        ("RTX-PRO-6000:2", ("RTX-PRO-6000",), 2),
        (["H100", "A100-80GB"], ("H100", "A100-80GB"), 1),
        (["L40S:4", "H100:4"], ("L40S", "H100"), 4),
    ],
)
def test_gpu_parsing(value: object, types: tuple[str, ...], count: int) -> None:
    assert parse_gpu(value) == GpuRequest(types, count)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("A10X", "unknown GPU 'A10X'"),
        ("H100:9", "from 1 to 8"),
        ("H100:two", "from 1 to 8"),
        (["H100:2", "A100-80GB"], "same count"),
        (["H100", "h100"], "appears twice"),
        ([], "empty fallback list"),
        (3, "expected a GPU name"),
    ],
)
def test_gpu_parsing_errors(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_gpu(value)


def test_gpu_serializes_as_strings() -> None:
    spec = ModelSpec.model_validate({"name": "m", "class_name": "M", "gpu": ["H100:2", "H200:2"]})
    assert spec.to_json()["gpu"] == ["H100:2", "H200:2"]
    assert ModelSpec(name="m", class_name="M").to_json()["gpu"] is None


@pytest.mark.parametrize(
    ("cls", "name"),
    [("TinyGPT", "tiny-gpt"), ("HelloModel", "hello-model"), ("Llama3Chat", "llama-3-chat"), ("X", "x")],
)
def test_default_name(cls: str, name: str) -> None:
    assert default_name(cls) == name


def test_spec_is_frozen_and_strict() -> None:
    spec = ModelSpec(name="m", class_name="M")
    with pytest.raises(Exception, match="frozen"):
        spec.keep_warm = 3
    assert (spec.keep_warm, spec.max_containers, spec.idle_timeout, spec.timeout, spec.concurrency) == (
        0,
        None,
        300,
        600,
        1,
    )


def test_image_builder_returns_new_images() -> None:
    base = gpuserve.Image(python="3.12")
    full = base.pip_install("torch==2.13.0", "transformers>=4").apt_install("ffmpeg").env(KEY="v", OTHER="x y")
    assert base.pip == () and base.apt == ()
    assert full.pip == ("torch==2.13.0", "transformers>=4")
    assert full.apt == ("ffmpeg",)
    assert full.env_dict == {"KEY": "v", "OTHER": "x y"}
    assert full.env(KEY="w").env_dict == {"KEY": "w", "OTHER": "x y"}


@pytest.mark.parametrize(
    ("build", "field", "fragment"),
    [
        (lambda: gpuserve.Image(python="2.7"), "image.python", "not supported"),
        (lambda: gpuserve.Image().apt_install("ffmpeg; rm -rf /"), "image.apt", "not a Debian package name"),
        (lambda: gpuserve.Image().pip_install("torch\nRUN evil"), "image.pip", "not one requirement"),
        (lambda: gpuserve.Image().pip_install("not a requirement!!"), "image.pip", "PEP 508"),
        (lambda: gpuserve.Image().env(**{"BAD-KEY": "v"}), "image.env", "environment variable name"),
    ],
)
def test_image_errors_name_the_field(build: object, field: str, fragment: str) -> None:
    with pytest.raises(gpuserve.SpecError) as info:
        build()  # type: ignore[operator]
    assert fragment in str(info.value)
    assert info.value.problems[0].field == field


def test_spot_is_refused_outside_its_three_values_naming_them() -> None:
    class Model:
        def setup(self) -> None: ...

        def predict(self, text: str) -> str:
            return text

    with pytest.raises(gpuserve.SpecError) as info:
        gpuserve.model(spot="always")(Model)  # type: ignore[call-overload]
    problem = info.value.problems[0]
    assert problem.field == "spot"
    assert problem.value == "always"
    assert "'prefer'" in problem.allowed and "'only'" in problem.allowed


def test_spot_defaults_to_on_demand() -> None:
    assert ModelSpec(name="m", class_name="M").spot == "off"

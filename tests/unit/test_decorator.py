from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

import gpuserve
from gpuserve.decorator import spec_of


class In(BaseModel):
    prompt: str = Field(min_length=1)


class Out(BaseModel):
    text: str


def test_bare_and_called_forms_record_the_same_spec() -> None:
    @gpuserve.model
    class Bare:
        def predict(self, inp: In) -> Out:
            return Out(text=inp.prompt)

    @gpuserve.model()
    class Called:
        def predict(self, inp: In) -> Out:
            return Out(text=inp.prompt)

    assert spec_of(Bare)[0].model_dump(exclude={"name", "class_name"}) == spec_of(Called)[0].model_dump(
        exclude={"name", "class_name"}
    )
    assert spec_of(Bare)[0].name == "bare"


def test_options_are_recorded() -> None:
    image = gpuserve.Image(python="3.11").pip_install("torch==2.13.0").apt_install("ffmpeg").env(KEY="v")

    @gpuserve.model(
        name="tiny-gpt",
        gpu="A10G",
        image=image,
        setup_timeout=900,
        keep_warm=1,
        max_containers=4,
        idle_timeout=300,
        timeout=600,
        concurrency=1,
        secrets=["HF_TOKEN"],
    )
    class TinyGPT:
        def setup(self) -> None: ...

        def predict(self, inp: In) -> Out:
            return Out(text=inp.prompt)

    spec, signature = spec_of(TinyGPT)
    assert spec.to_json() == {
        "name": "tiny-gpt",
        "class_name": "TinyGPT",
        "gpu": ["A10"],
        "image": {"python": "3.11", "pip": ["torch==2.13.0"], "apt": ["ffmpeg"], "env_vars": [["KEY", "v"]]},
        "weights": [],
        "limits": {
            "max_body_bytes": 10485760,
            "max_queue": None,
            "read_timeout": 30,
            "max_header_bytes": 16384,
            "keep_alive": 5,
            "max_connections": 1000,
        },
        "keep_warm": 1,
        "max_containers": 4,
        "idle_timeout": 300,
        "timeout": 600,
        "setup_timeout": 900,
        "grace": 30,
        "spot_notices": "off",
        "spot": "off",
        "concurrency": 1,
        "secrets": ["HF_TOKEN"],
        "batch": None,
    }
    assert signature.style == "model" and signature.input_model is In and not signature.streaming


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(gpuserve.SpecError) as info:

        @gpuserve.model(gpu="A10X", keep_warm=-1, concurrency=0, idle_timeout=99999, bogus=1)  # type: ignore[call-overload]
        class Bad:
            def predict(self, x):  # type: ignore[no-untyped-def]
                return x

    fields = [p.field for p in info.value.problems]
    assert set(fields) == {
        "Bad.predict return",
        "Bad.predict(x)",
        "gpu",
        "keep_warm",
        "concurrency",
        "idle_timeout",
        "bogus",
    }
    message = str(info.value)
    assert "7 problems" in message
    assert "gpu='A10X': unknown GPU 'A10X'. Allowed: None (CPU), one of T4, L4, A10, A100-40GB" in message
    assert "Fix: " in message
    assert "bogus=1: is not an option of @gpuserve.model" in message


def test_keep_warm_above_max_containers() -> None:
    with pytest.raises(gpuserve.SpecError, match="keep_warm=5 is more than max_containers=2"):

        @gpuserve.model(keep_warm=5, max_containers=2)
        class TooWarm:
            def predict(self, x: int) -> int:
                return x


def test_missing_predict() -> None:
    with pytest.raises(gpuserve.SpecError, match=r"NoPredict.predict=None: is missing"):

        @gpuserve.model
        class NoPredict:
            def setup(self) -> None: ...


def test_decorating_twice_is_refused() -> None:
    @gpuserve.model
    class Once:
        def predict(self, x: int) -> int:
            return x

    with pytest.raises(gpuserve.SpecError, match="already decorated"):
        gpuserve.model(Once)


def test_stream_annotation_must_match_a_generator() -> None:
    with pytest.raises(gpuserve.SpecError, match="does not yield"):

        @gpuserve.model
        class NotAGenerator:
            def predict(self, x: int) -> Iterator[str]:
                return iter([str(x)])

    with pytest.raises(gpuserve.SpecError, match="yields but its annotation does not stream"):

        @gpuserve.model
        class UnannotatedGenerator:
            def predict(self, x: int) -> str:  # type: ignore[misc]
                yield str(x)


def test_keyword_parameters_become_one_input_model() -> None:
    @gpuserve.model
    class Kw:
        def predict(
            self,
            text: Annotated[str, Field(min_length=1)],
            mode: Literal["a", "b"] = "a",
            n: int = Field(1, ge=1, le=3),
        ) -> dict[str, str]:
            return {"x": text * n + mode}

    schema = spec_of(Kw)[1].input_schema()
    assert schema["required"] == ["text"]
    assert schema["properties"]["text"]["minLength"] == 1
    assert schema["properties"]["mode"] == {"default": "a", "enum": ["a", "b"], "title": "Mode", "type": "string"}
    assert schema["properties"]["n"]["maximum"] == 3
    assert schema["additionalProperties"] is False


def test_not_a_class() -> None:
    with pytest.raises(gpuserve.SpecError, match="is not a class"):
        gpuserve.model(lambda: None)  # type: ignore[call-overload]


def test_import_gpuserve_is_cheap() -> None:
    heavy = ("torch", "fastapi", "jinja2", "uvicorn", "click", "transformers", "pydantic", "httpx")
    code = f"import sys, gpuserve; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_the_client_alone_loads_no_pydantic_and_the_decorator_no_httpx() -> None:
    code = (
        "import sys\nimport gpuserve.client\nprint('pydantic' in sys.modules)\n"
        "from gpuserve import model\nprint('pydantic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
    code = "import sys\nfrom gpuserve import model, Limits, HuggingFace, File\nprint('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False"]


def test_lazy_names_are_listed_before_their_first_use() -> None:
    code = "import gpuserve\nprint(all(name in dir(gpuserve) for name in gpuserve.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True"]

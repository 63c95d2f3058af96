"""How each target carries a file (cog's Path, Modal's str, the packages a build adds, the OpenAPI), and an
open input where a target must name each one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

import gpuserve
from gpuserve.adapters import get_target
from gpuserve.errors import BuildError
from gpuserve.loader import load_app
from gpuserve.runtime.host import ModelHost
from gpuserve.runtime.server import create_app
from tests.apps import ROOT
from tests.models.fileio import FileDigest

REVERSE = f"{ROOT}/tests/models/fileio.py:FileReverse"
FRAMES = f"{ROOT}/tests/models/fileio.py:FileFrames"
DIGEST = f"{ROOT}/tests/models/fileio.py:FileDigest"


def test_cog_takes_and_returns_cog_paths() -> None:
    files = get_target("cog").render(load_app(REVERSE)).files
    assert "data: Path = Input()," in files["runner.py"] and "return Path(bridge.predict(inputs))" in files["runner.py"]
    schema = json.loads(files[".cog/openapi_schema.json"])["components"]["schemas"]
    assert schema["Input"]["properties"]["data"]["format"] == "uri"
    assert schema["Output"] == {"type": "string", "format": "uri", "title": "Output"}


def test_cog_streams_files_as_paths() -> None:
    runner = get_target("cog").render(load_app(FRAMES)).files["runner.py"]
    assert ") -> Iterator[Path]:" in runner and "yield Path(chunk)" in runner


def test_modal_method_takes_a_url_the_cli_can_parse() -> None:
    app = get_target("modal").render(load_app(DIGEST)).files["modal_app.py"]
    assert "data: str," in app  # bytes from Python callers pass too: tests/integration/test_files_targets.py


def test_builds_add_httpx_for_files_and_boto3_for_file_outputs() -> None:
    digest = get_target("runpod").render(load_app(DIGEST)).files["requirements.txt"]
    reverse = get_target("runpod").render(load_app(REVERSE)).files["requirements.txt"]
    assert "httpx==" in digest and "boto3==" not in digest
    assert "httpx==" in reverse and "boto3==" in reverse


def test_openapi_offers_json_urls_and_multipart_uploads() -> None:
    app = create_app(ModelHost(FileDigest)).app
    content = app.openapi()["paths"]["/predict"]["post"]["requestBody"]["content"]
    form = content["multipart/form-data"]["schema"]
    assert form["properties"]["data"]["format"] == "binary" and form["properties"]["note"]["type"] == "string"
    components = app.openapi()["components"]["schemas"]
    assert components["FileDigestInput"]["properties"]["data"]["format"] == "uri"


class AnyObject(BaseModel):
    model_config = ConfigDict(extra="allow")


@gpuserve.model(name="open-input")
class OpenInput:
    """Takes any JSON object, as a RunPod handler that passes its input on does."""

    def predict(self, inp: AnyObject) -> dict[str, Any]:
        return inp.model_dump()


@pytest.mark.parametrize("target", ["cog", "modal"])
def test_targets_that_name_inputs_refuse_an_open_input(target: str) -> None:
    with pytest.raises(BuildError) as refused:
        get_target(target).render(load_app(f"{__file__}:OpenInput"))
    assert "declares each input by name" in str(refused.value)

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from gpuserve.loader import load_app
from gpuserve.runtime import InvalidInput, ModelHost, PredictFailed
from tests.apps import ALL, ASYNC, FAULTY, HELLO, LIFECYCLE, STREAM, TEXT, Case


def host_for(ref: str) -> ModelHost:
    return ModelHost(load_app(ref).cls)


@pytest.mark.parametrize("case", [c for c in ALL if c is not TEXT], ids=lambda c: c.key)
def test_predict_gives_the_expected_output(case: Case, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIFECYCLE_LOG", str(tmp_path / "log"))
    host = host_for(case.ref)
    output = host.predict(case.good)
    if case.expected is not None:
        assert output == case.expected
    with pytest.raises(InvalidInput) as info:
        host.predict(case.bad)
    assert [e["loc"] for e in info.value.errors] == [["input", case.bad_field]]


def test_invalid_input_names_field_and_rule() -> None:
    host = host_for(HELLO.ref)
    with pytest.raises(InvalidInput) as info:
        host.validate({"name": "", "language": "de", "extra": 1})
    assert str(info.value) == (
        "input.name: String should have at least 1 character; "
        "input.language: Input should be 'en', 'fr' or 'es'; "
        "input.extra: Extra inputs are not permitted"
    )
    with pytest.raises(InvalidInput, match="input.extra: Extra inputs are not permitted"):  # a Mapping, not a dict
        host.validate(MappingProxyType({"name": "Ada", "extra": 1}))
    not_an_object: Any = [1, 2]  # JSON a client may send, though validate's signature says otherwise
    with pytest.raises(InvalidInput, match="Input should be a JSON object, not list"):
        host.validate(not_an_object)


def test_setup_once_and_shutdown_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    log = tmp_path / "log"
    monkeypatch.setenv("LIFECYCLE_LOG", str(log))
    host = host_for(LIFECYCLE.ref)
    states = [host.state]
    host.setup()
    host.setup()
    host.predict({"tag": "a"})
    states.append(host.state)
    host.shutdown()
    host.shutdown()
    states.append(host.state)
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["setup", "shutdown"]
    assert states == ["starting", "ready", "stopped"]


def test_predict_errors_keep_their_type_and_message() -> None:
    host = host_for(FAULTY.ref)
    with pytest.raises(PredictFailed) as info:
        host.predict({"fail": True, "message": "bad weights"})
    assert (info.value.type, info.value.message) == ("ValueError", "bad weights")
    assert host.predict({}) == {"calls": 2}


def test_stream_and_async_forms() -> None:
    stream = host_for(STREAM.ref)
    assert list(stream.stream({"count": 2})) == ["alpha ", "beta "]
    assert stream.signature.output_schema() == {"type": "array", "items": {"type": "string"}, "x-gpuserve-stream": True}

    echo = host_for(ASYNC.ref)
    assert echo.predict({"text": "a", "mode": "upper"}) == ["echo:A"]

    async def both() -> tuple[object, list[object]]:
        value = echo.validate({"text": "b"})
        chunks = [c async for c in stream.astream(stream.validate({"count": 1}))]
        return await echo.apredict(value), chunks

    assert asyncio.run(both()) == (["echo:B"], ["alpha "])


def test_output_not_matching_annotation_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "wrong_output.py"
    source.write_text(
        "import gpuserve\n\n"
        "@gpuserve.model\n"
        "class Wrong:\n"
        "    def predict(self, x: int) -> int:\n"
        "        return 'not a number'\n"
    )
    with pytest.raises(PredictFailed, match="does not match its annotation"):
        host_for(str(source)).predict({"x": 1})


def test_failed_setup_is_reported(tmp_path: Path) -> None:
    source = tmp_path / "broken_setup.py"
    source.write_text(
        "import gpuserve\n\n"
        "@gpuserve.model\n"
        "class Broken:\n"
        "    def setup(self) -> None:\n"
        "        raise OSError('weights missing')\n"
        "    def predict(self, x: int) -> int:\n"
        "        return x\n"
    )
    host = host_for(str(source))
    with pytest.raises(OSError, match="weights missing"):
        host.setup()
    assert host.state == "failed" and host.error == "OSError: weights missing"
    assert not host.ready


def test_cache_dir_points_model_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GPUSERVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("TORCH_HOME", raising=False)
    host_for(HELLO.ref).setup()
    assert os.environ["HF_HOME"] == str(tmp_path / "cache" / "huggingface")
    assert os.environ["TORCH_HOME"] == str(tmp_path / "cache" / "torch")

"""gpuserve test's parts that need no target: the inputs it makes and reads, how answers compare, where venvs live."""

from __future__ import annotations

import base64
import json
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

import gpuserve
from gpuserve.build import build
from gpuserve.conformance.compare import Outcome, decode_data_uri, difference, first_difference
from gpuserve.conformance.inputs import TINY_PNG, UNKNOWN_FIELD, InputCase, InputsError, from_file, from_schema
from gpuserve.conformance.runners.cog import baked_env
from gpuserve.conformance.runners.docker import image_command, local_command
from gpuserve.conformance.venvs import cache_root, venv_key
from gpuserve.loader import load_app
from gpuserve.runtime.host import InvalidInput, ModelHost
from tests.apps import EXAMPLES, HELLO


class Knobs(BaseModel):
    ratio: float = Field(0.5, gt=0, lt=1)
    count: int = Field(2, ge=1, le=3)
    note: str | None = Field(None, max_length=4)


@gpuserve.model(name="bounds")
class Bounds:
    def predict(self, knobs: Knobs) -> str:
        return str(knobs)


@gpuserve.model(name="kwargs")
class Kwargs:
    def predict(
        self, word: Annotated[str, Field(min_length=2)], flag: bool = False, level: int = Field(0, ge=0)
    ) -> str:
        return word


def refused(host: ModelHost, value: Any) -> bool:
    try:
        host.validate(value)
    except InvalidInput:
        return True
    return False


@pytest.mark.parametrize("cls", [Bounds, Kwargs, *(load_app(c.ref).cls for c in EXAMPLES)], ids=lambda c: c.__name__)
def test_made_inputs_are_refused_exactly_when_they_are_meant_to_be(cls: type) -> None:
    host = ModelHost(cls)
    cases = from_schema(host.signature.input_schema())
    assert cases[0].label == "example" and not refused(host, cases[0].value)
    wrong = [case.label for case in cases if refused(host, case.value) != (case.intent == "invalid")]
    assert wrong == []
    assert len({json.dumps(case.value, sort_keys=True) for case in cases}) == len(cases)  # each value once


def test_bounds_enums_lengths_and_extra_fields_each_get_a_case() -> None:
    cases = {case.label: case for case in from_schema(ModelHost(load_app(HELLO.ref).cls).signature.input_schema())}
    assert cases["name: length 64 (max)"].value["name"] == "example" * 9 + "e"
    assert cases["name: length 65 (over max 64)"].intent == "invalid"
    assert {cases['language: "fr"'].value["language"], cases['language: "es"'].value["language"]} == {"fr", "es"}
    assert "name" not in cases["name missing"].value
    assert cases["unknown field"].value[UNKNOWN_FIELD] == 1
    knobs = {case.label: case for case in from_schema(ModelHost(Kwargs).signature.input_schema())}
    assert knobs["level: -1 (past min 0)"].intent == "invalid"
    assert "level: 0 (min)" not in knobs  # the example input already sends 0: each value is sent once


def test_a_file_field_gets_a_small_png() -> None:
    schema = {"type": "object", "properties": {"image": {"type": "string", "format": "uri"}}, "required": ["image"]}
    cases = {case.label: case for case in from_schema(schema)}
    assert cases["example"].value == {"image": TINY_PNG}
    decoded = decode_data_uri(TINY_PNG)
    assert decoded is not None and decoded.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert cases["image: 12345 (wrong type)"].intent == "invalid"


def test_inputs_file_as_a_list_or_as_json_lines(tmp_path: Path) -> None:
    listed = tmp_path / "inputs.json"
    listed.write_text('[{"name": "Ada"}, {"name": ""}]')
    lines = tmp_path / "inputs.jsonl"
    lines.write_text('{"name": "Ada"}\n\n{"name": ""}\n')
    expected = [InputCase("#1", {"name": "Ada"}, "given"), InputCase("#2", {"name": ""}, "given")]
    for path in (listed, lines):
        read = from_file(path)
        assert [(c.value, c.intent) for c in read] == [(c.value, c.intent) for c in expected]
        assert [c.label for c in read] == [f"{path.name} #1", f"{path.name} #2"]


@pytest.mark.parametrize(
    ("text", "says"),
    [('{"name": "Ada"}\n{"name": \n', "line 2 is not JSON"), ("", "holds no inputs"), ("[]", "holds no inputs")],
)
def test_a_bad_inputs_file_names_the_problem(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(InputsError, match=says) as caught:
        from_file(path)
    assert str(path) in str(caught.value) and "Fix:" in str(caught.value)


def test_outputs_compare_as_json_values() -> None:
    assert first_difference({"a": [1, 2.0]}, {"a": [1.0, 2]}, "output") is None
    assert first_difference({"a": 0.1 + 0.2}, {"a": 0.3}, "output") is None
    assert first_difference({"a": True}, {"a": 1}, "output") == "output.a: true in-process, 1 on the target"
    assert first_difference({"a": [1, {"b": "x"}]}, {"a": [1, {"b": "y"}]}, "output") == (
        'output.a[1].b: "x" in-process, "y" on the target'
    )
    assert first_difference({"a": 1}, {"b": 1}, "output") == "output: keys ['a'] missing, ['b'] extra"
    assert first_difference(["x"], ["x", "y"], "output") == "output: 1 items in-process, 2 on the target"


def test_a_stream_cut_into_other_pieces_is_a_difference_that_says_so() -> None:
    assert first_difference(["a ", "b"], ["a ", "b"], "output") is None
    assert first_difference(["a ", "b"], ["a b"], "output") == (
        "output: the same text in other pieces: 2 in-process, 1 on the target"
    )


def test_files_compare_by_their_decoded_bytes() -> None:
    png = base64.b64encode(b"\x89PNG-bytes").decode()
    same = Outcome("output", {"image": f"data:image/png;base64,{png}"})
    spelled_otherwise = Outcome("output", {"image": f"data:application/octet-stream;base64,{png}"})
    assert difference(same, spelled_otherwise) is None
    other = Outcome("output", {"image": "data:image/png;base64," + base64.b64encode(b"other").decode()})
    assert difference(same, other) == "output.image: a file of 10 bytes in-process, 5 different bytes on the target"


def test_refusals_compare_by_kind_not_by_wording() -> None:
    assert difference(Outcome("invalid", message="input.x: too big"), Outcome("invalid", message="x > 10")) is None
    assert difference(Outcome("failed", message="ValueError: a"), Outcome("failed", message="boom")) is None
    found = difference(Outcome("output", {"a": 1}), Outcome("failed", message="ValueError: boom"))
    assert found == "in-process gave an output, the target a failure of predict: ValueError: boom"
    assert difference(Outcome("invalid"), Outcome("error", message="timed out")) == "no answer: timed out"


def test_venvs_live_in_gpuserve_cache_keyed_by_what_they_hold(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GPUSERVE_VENVS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "gpuserve" / "venvs"
    monkeypatch.setenv("GPUSERVE_VENVS", str(tmp_path / "elsewhere"))
    assert cache_root() == tmp_path / "elsewhere"
    assert venv_key(["b==1", "a==2", "a==2"]) == venv_key(["a==2", "b==1"]) != venv_key(["a==2"])


def test_the_docker_command_runs_on_loopback(tmp_path: Path) -> None:
    directory = build(HELLO.ref, "docker", tmp_path / "docker").directory
    command = local_command(image_command(directory / "Dockerfile"), "/venv/bin/python", 5001)
    assert command == [
        "/venv/bin/python",
        "-m",
        "gpuserve.runtime",
        "app:Hello",
        "--host",
        "127.0.0.1",
        "--port",
        "5001",
    ]


def test_cog_gets_the_environment_cog_build_bakes_in(tmp_path: Path) -> None:
    directory = build(HELLO.ref, "cog", tmp_path / "cog").directory
    env = baked_env(directory)
    assert env["COG_PREDICT_TYPE_STUB"] == "runner.py:Runner"
    assert env["COG_MAX_CONCURRENCY"] == "4"  # hello's concurrency=4 is @concurrent(max=4) on run()


@gpuserve.model(name="pinned", image=gpuserve.Image().pip_install("pydantic==1.0.0", "no-such-package-here==1.0"))
class Pinned:
    def predict(self, x: int) -> int:
        return x


def test_packages_that_are_not_the_image_pins_are_named() -> None:
    from gpuserve.conformance.reference import Reference

    installed = version("pydantic")
    assert Reference(load_app(f"{__file__}:Pinned")).drift() == [
        f"pydantic {installed} here; the image pins ==1.0.0",
        "no-such-package-here is not installed here; the image pins ==1.0",
    ]
    assert Reference(load_app(HELLO.ref)).drift() == []


def test_a_known_difference_is_one_the_platform_accounts_for_entirely() -> None:
    from gpuserve.conformance.known import COG_DROPS_UNKNOWN, COG_REFUSES_NULL, explain

    def answers(value: Any) -> Outcome:
        return Outcome("output", {"seen": sorted(value)})

    refused, invalid = Outcome("invalid", message="extra"), Outcome("invalid", message="null is not an integer")
    extra, dropped = {"a": 1, "zzz": 2}, answers({"a": 1})
    assert explain("cog", extra, refused, dropped, {"a"}, (answers, answers)) == COG_DROPS_UNKNOWN
    assert explain("docker", extra, refused, dropped, {"a"}, (answers, answers)) is None
    assert explain("cog", extra, refused, Outcome("output", {"seen": ["zzz"]}), {"a"}, (answers, answers)) is None
    with_null = {"a": 1, "w": None}
    expected = answers({"a": 1})  # the model reads a null `w` as the default, as if it were left out
    assert explain("cog", with_null, expected, invalid, {"a", "w"}, (answers, answers)) == COG_REFUSES_NULL
    assert explain("cog", with_null, expected, invalid, {"a", "w"}, (answers, lambda _v: invalid)) is None

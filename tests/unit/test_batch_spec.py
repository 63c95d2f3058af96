"""gpuserve.Batch as a spec option, the batched predict signature, and what every target shows of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

import gpuserve
from gpuserve.adapters import get_target
from gpuserve.decorator import spec_of
from gpuserve.loader import load_app
from gpuserve.runtime import ModelHost
from gpuserve.runtime.runpod_worker import RunpodWorker
from gpuserve.runtime.server import create_app
from gpuserve.spec import ModelSpec
from tests.apps import BATCHED
from tests.models.batched import Item, Result


@pytest.mark.parametrize(
    ("options", "field", "said"),
    [
        ({"max_size": 0}, "batch.max_size", "Allowed: a whole number from 1 to 1024"),
        ({"max_size": 2.5}, "batch.max_size", "Allowed: a whole number from 1 to 1024"),
        ({"wait_ms": -1}, "batch.wait_ms", "Allowed: milliseconds from 0 to 60000"),
        ({"wait_ms": True}, "batch.wait_ms", "Allowed: milliseconds from 0 to 60000"),
        ({"size": 4}, "batch.size", "is not an option of gpuserve.Batch"),
    ],
)
def test_batch_options_are_refused_naming_the_field_and_what_is_allowed(
    options: dict[str, Any], field: str, said: str
) -> None:
    with pytest.raises(gpuserve.SpecError) as info:
        gpuserve.Batch(**options)
    assert [p.field for p in info.value.problems] == [field]
    assert said in str(info.value)


def test_a_batch_given_as_a_dict_is_reported_with_the_other_problems() -> None:
    with pytest.raises(gpuserve.SpecError) as info:

        @gpuserve.model(batch={"max_size": 0}, keep_warm=-1)  # type: ignore[call-overload]
        class Bad:
            def predict(self, items: list[Item]) -> list[Result]:
                return []

    assert sorted(p.field for p in info.value.problems) == ["batch.max_size", "keep_warm"]


def test_slots_are_concurrency_unbatched_and_every_group_plus_one_forming_batched() -> None:
    assert ModelSpec(name="m", class_name="M", concurrency=3).slots == 3
    assert ModelSpec(name="m", class_name="M", concurrency=2, batch=gpuserve.Batch(max_size=16)).slots == 48


def test_a_batched_model_shows_one_item_in_and_one_result_out() -> None:
    spec, signature = spec_of(load_app(BATCHED.ref).cls)
    assert spec.batch == gpuserve.Batch(max_size=4, wait_ms=100)
    assert signature.batched and not signature.streaming
    assert signature.input_schema() == Item.model_json_schema()
    assert signature.output_schema() == Result.model_json_schema()
    with TestClient(create_app(ModelHost(load_app(BATCHED.ref).cls), env={})) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schemas["Item"]["properties"]) == {"text", "fail", "seconds"}
    assert schemas["PredictRequest"]["properties"]["input"] == {"$ref": "#/components/schemas/Item"}


def test_every_target_describes_the_single_item() -> None:
    app = load_app(BATCHED.ref)
    cog = json.loads(get_target("cog").render(app).files[".cog/openapi_schema.json"])
    assert set(cog["components"]["schemas"]["Input"]["properties"]) == {"text", "fail", "seconds"}
    runpod = json.loads(get_target("runpod").render(app).files["test_input.json"])
    assert set(runpod["input"]) == {"text", "fail", "seconds"}
    modal = get_target("modal").render(app).files["modal_app.py"]
    assert "text: str," in modal and "items" not in modal


def test_the_runpod_worker_takes_enough_jobs_at_once_to_fill_each_group() -> None:
    config = RunpodWorker(ModelHost(load_app(BATCHED.ref).cls)).config(argv=["handler.py"])
    assert config["concurrency_modifier"](1) == 8  # concurrency 1: one group of 4 running and one forming


class Text(BaseModel):
    text: str


def _problems(predict: Any) -> list[tuple[str, str]]:
    namespace = {"predict": predict}
    cls = type("Model", (), namespace)
    with pytest.raises(gpuserve.SpecError) as info:
        gpuserve.model(batch=gpuserve.Batch())(cls)
    return [(p.field, p.message) for p in info.value.problems]


def test_the_keyword_form_cannot_be_batched() -> None:
    def predict(self: Any, text: str, times: int = 1) -> list[str]:
        return []

    assert _problems(predict) == [
        (
            "Model.predict parameters",
            "a batched predict takes one parameter, the list of items; the keyword form "
            "(predict(self, text: str, ...)) cannot be batched",
        )
    ]


def test_a_batched_predict_takes_a_list_of_pydantic_models() -> None:
    def predict(self: Any, items: list[str]) -> list[str]:
        return []

    ((field, message),) = _problems(predict)
    assert field == "Model.predict(items)" and message.startswith("a batched predict takes a list of pydantic models")


def test_a_batched_predict_returns_a_list() -> None:
    def predict(self: Any, items: list[Text]) -> str:
        return ""

    assert _problems(predict) == [
        ("Model.predict return", "a batched predict returns a list: one result per item, in order")
    ]


def test_batching_and_streaming_are_refused_together() -> None:
    def predict(self: Any, items: list[Text]) -> Iterator[str]:
        yield ""

    ((field, message),) = _problems(predict)
    assert field == "Model.predict return" and message.startswith("a batched predict cannot stream")


def test_item_error_in_the_return_annotation_is_not_an_output() -> None:
    def predict(self: Any, items: list[Text]) -> list[Text | gpuserve.ItemError]:
        return []

    cls = gpuserve.model(batch=gpuserve.Batch())(type("Model", (), {"predict": predict}))
    assert spec_of(cls)[1].output_type is Text

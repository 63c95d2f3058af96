"""schemathesis, all of its checks, against each model's own OpenAPI: the server in-process, as ASGI.

Zero 5xx, every answer in its documented schema and status, every refusal a 4xx. Inputs that would only make a
test model sleep, repeat or fail on purpose are tamed after generation, so what is checked is the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from gpuserve.example import EXAMPLE_FILE
from gpuserve.runtime import ModelHost
from gpuserve.runtime.files import file_fields
from gpuserve.runtime.server import create_app
from tests.apps import ALL, ROOT, Case

SLOW = Case("slow", f"{ROOT}/tests/models/slow.py:Slow", {"seconds": 0}, None, {"seconds": False}, "seconds")
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
# Values a test model acts on (sleeps, repeats, raises), and the most the test lets them be.
TAME: dict[str, Any] = {"seconds": 0.01, "repeat": 3, "max_new_tokens": 4, "fail": False}


def tame(body: Any, files: list[str], mode: GenerationMode) -> Any:
    """A valid value for the knobs in TAME, kept valid; whatever else was generated stays as it was.

    File inputs get a real file in positive mode: a generated URL (https://0.com) is rightly refused.
    """
    inner = body.get("input") if isinstance(body, dict) else None
    if isinstance(inner, dict) and mode is GenerationMode.POSITIVE:
        for name in files:
            if isinstance(inner.get(name), str):
                inner[name] = EXAMPLE_FILE
    if isinstance(inner, dict):
        for key, most in TAME.items():
            value = inner.get(key)
            if value is True and most is False:
                inner[key] = False
            elif type(value) in (int, float) and type(most) is not bool and value > most:
                inner[key] = most
    return body


@pytest.fixture(params=[*ALL, SLOW], ids=lambda c: c.key)
def app(
    request: pytest.FixtureRequest, case_env: Callable[[Case], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    case: Case = request.param
    for key, value in case_env(case).items():
        monkeypatch.setenv(key, value)
    host = ModelHost.from_ref(case.ref)
    host.setup()
    yield create_app(host, env={})
    host.shutdown()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_every_check_passes_on_every_operation(app: Any, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {op.path for op in operations} == {"/health", "/metrics", "/predict"}
    strategy = st.one_of(*(op.as_strategy(generation_mode=mode) for op in operations))
    files = sorted(file_fields(app.app.state.host.signature.input_model))

    @given(case=strategy)
    @SETTINGS
    def check(case: schemathesis.Case[Any]) -> None:
        # Multipart uploads are checked by tests/integration/test_files_targets.py: schemathesis reads its own
        # multipart encoding of numbers (as text) as a schema violation the server should have refused.
        assume(case.media_type != "multipart/form-data")
        case.body = tame(case.body, files, mode)
        response = case.call_and_validate()
        assert response.status_code < 500, response.text

    check()

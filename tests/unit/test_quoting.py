"""Hostile strings in env values, descriptions and defaults cannot break out of the rendered files."""

import ast
import re
from typing import Annotated, Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field

import gpuserve
from gpuserve.adapters import get_target
from gpuserve.decorator import spec_of
from gpuserve.loader import LoadedApp

# Any text a person could put in a value: quotes, $, backslashes, braces, Jinja and YAML syntax; no NUL or newline.
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\n\r"), max_size=40)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_app(env_value: str, description: str, default: str) -> LoadedApp:
    def predict(self: Any, text: Annotated[str, Field(description=description)] = default) -> str:
        return text

    cls = type("Hostile", (), {"predict": predict, "__module__": __name__})
    gpuserve.model(image=gpuserve.Image().env(HOSTILE=env_value))(cls)
    spec, signature = spec_of(cls)
    return LoadedApp(cls, spec, signature, "hostile", None)


def docker_unquote(word: str) -> str:
    """BuildKit's reading of a double-quoted word: a backslash escapes the next character."""
    assert word.startswith('"') and word.endswith('"'), word
    out, chars, i = [], word[1:-1], 0
    while i < len(chars):
        if chars[i] == "\\" and i + 1 < len(chars):
            i += 1
        elif chars[i] in '"$':
            raise AssertionError(f"unescaped {chars[i]!r} in {word}")
        out.append(chars[i])
        i += 1
    return "".join(out)


@SETTINGS
@given(value=TEXT)
def test_dockerfile_env_values_stay_one_quoted_word(value: str) -> None:
    for target in ("docker", "runpod"):
        dockerfile = get_target(target).render(make_app(value, "d", "x")).files["Dockerfile"]
        lines = [
            line for line in dockerfile.split("\n") if line.startswith("ENV HOSTILE=")
        ]  # Docker splits on \n alone
        assert len(lines) == 1
        assert docker_unquote(lines[0].removeprefix("ENV HOSTILE=")) == value
        assert dockerfile.count("\n") == get_target(target).render(make_app("plain", "d", "x")).files[
            "Dockerfile"
        ].count("\n")


@SETTINGS
@given(value=TEXT)
def test_cog_yaml_env_values_round_trip(value: str) -> None:
    config = yaml.safe_load(get_target("cog").render(make_app(value, "d", "x")).files["cog.yaml"])
    assert config["environment"] == [f"HOSTILE={value}"]
    assert config["run"] == "runner.py:Runner"


def _call_kwargs(source: str, function: str) -> dict[str, Any]:
    tree = ast.parse(source)
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", getattr(n.func, "attr", None)) == function
    ]
    assert len(calls) == 1
    return {k.arg: ast.literal_eval(k.value) for k in calls[0].keywords if k.arg}


@SETTINGS
@given(value=TEXT, description=TEXT, default=TEXT)
def test_python_files_parse_and_keep_the_values(value: str, description: str, default: str) -> None:
    app = make_app(value, description, default)
    runner = get_target("cog").render(app).files["runner.py"]
    assert _call_kwargs(runner, "Input") == {"description": description, "default": default}
    modal_app = get_target("modal").render(app).files["modal_app.py"]
    tree = ast.parse(modal_app)
    env_call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", None) == "env")
    assert ast.literal_eval(env_call.args[0])["HOSTILE"] == value
    predict = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "predict")
    assert [ast.literal_eval(d) for d in predict.args.kw_defaults] == [default]
    handler = get_target("runpod").render(app).files["handler.py"]
    ast.parse(handler)
    assert re.search(r"RunpodWorker\.load\('hostile:Hostile'\)", handler)

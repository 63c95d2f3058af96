"""Hostile strings in env values, descriptions and defaults cannot break out of the rendered files."""

import ast
import json
import re
from typing import Annotated, Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field

import gpuserve
from gpuserve.adapters import get_target, target_names
from gpuserve.decorator import spec_of
from gpuserve.loader import LoadedApp

# Any text a person could put in a value: quotes, $, backslashes, braces, Jinja and YAML syntax; no NUL or newline.
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\n\r"), max_size=40)
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


def strings(path: str, text: str) -> list[str]:
    """Every string a platform's parser reads out of one rendered file (none for prose)."""
    if path.endswith(".py"):
        return [n.value for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    if path.endswith(".json"):
        return leaves(json.loads(text))
    if path.endswith((".yaml", ".yml")):
        return leaves(yaml.safe_load(text))
    if path.endswith("Dockerfile"):
        lines = text.split("\n")  # Docker splits on \n alone
        return [docker_unquote(line.split("=", 1)[1]) for line in lines if line.startswith("ENV HOSTILE=")]
    return []


def leaves(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in leaves(v)]
    if isinstance(value, list):
        return [s for v in value for s in leaves(v)]
    return [value] if isinstance(value, str) else []


@SETTINGS
@given(value=TEXT)
@pytest.mark.parametrize("target", target_names())
def test_env_values_parse_back_intact_on_every_target(target: str, value: str) -> None:
    """Whatever the target renders, every file still parses, and the value comes back whole from one of them."""
    rendered = get_target(target).render(make_app(value, "d", "x"))
    found = [s for path, text in rendered.files.items() for s in strings(path, text)]
    assert value in found or f"HOSTILE={value}" in found
    if "Dockerfile" in rendered.files:
        plain = get_target(target).render(make_app("plain", "d", "x")).files["Dockerfile"]
        assert rendered.files["Dockerfile"].count("\n") == plain.count("\n")
        assert len(strings("Dockerfile", rendered.files["Dockerfile"])) == 1


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
    assert [ast.literal_eval(d) for d in predict.args.kw_defaults if d is not None] == [default]
    handler = get_target("runpod").render(app).files["handler.py"]
    ast.parse(handler)
    assert re.search(r"RunpodWorker\.load\('hostile:Hostile'\)", handler)

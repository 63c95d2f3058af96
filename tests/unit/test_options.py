"""One declaration per option: every target decides every spec field, and the docs tables come from the targets."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import gpuserve
from gpuserve.adapters import get_target, target_names
from gpuserve.adapters.base import spec_fields
from gpuserve.adapters.table import DOCS_BEGIN, DOCS_END, markdown, option_table
from gpuserve.errors import BuildError
from gpuserve.loader import load_app
from gpuserve.spec import DEFAULT_GRACE_SECONDS, Image, ModelSpec
from tests.apps import ALL, ROOT, TEXT
from tests.spec_matrix import matrix_apps

sys.path.insert(0, str(ROOT / "scripts"))
from option_tables import DOCS, with_table  # noqa: E402


def test_every_target_decides_every_field(tmp_path: Path) -> None:
    decided = 0
    for key, app in matrix_apps(tmp_path):
        for target in target_names():
            try:
                options = get_target(target).options(app)
            except BuildError:
                continue  # the target cannot express this spec at all (checked in test_platforms)
            assert sorted(options) == sorted(spec_fields()), (key, target)
            for name, carried in options.items():
                assert carried.how in ("setting", "runtime", "not offered"), (key, target, name)
                assert carried.note if carried.how == "not offered" else carried.where, (key, target, name)
            decided += 1
    assert decided > 40


def test_spec_fields_cover_the_spec_and_the_image() -> None:
    fields = spec_fields()
    assert {f for f in fields if not f.startswith("image.")} == set(ModelSpec.model_fields) - {"image"}
    assert {f.removeprefix("image.") for f in fields if f.startswith("image.")} == set(Image.model_fields)


def test_every_option_declares_what_is_allowed_and_the_fix() -> None:
    for model in (ModelSpec, Image):
        for name, info in model.model_fields.items():
            extra = info.json_schema_extra
            assert isinstance(extra, dict) and extra["allowed"] and extra["hint"] and info.description, name


def test_decorator_signature_is_the_spec() -> None:
    """@gpuserve.model's keyword options are the spec's fields (less the class's own name), and no others."""
    called = [o for o in typing.get_overloads(gpuserve.model) if "name" in inspect.signature(o).parameters]
    assert len(called) == 1
    parameters = inspect.signature(called[0]).parameters
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters.values())
    assert set(parameters) == set(ModelSpec.model_fields) - {"class_name"}


@pytest.mark.parametrize("target", sorted(DOCS))
def test_docs_option_tables_are_current(target: str) -> None:
    path = ROOT / "docs" / "targets" / DOCS[target]
    text = path.read_text()
    assert DOCS_BEGIN in text and DOCS_END in text
    assert with_table(text, target) == text, f"{path.name} is stale: run python scripts/option_tables.py"


def test_inspect_prints_the_option_table() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gpuserve.cli", "inspect", TEXT.ref, "--target", "runpod"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == markdown(option_table(load_app(TEXT.ref), "runpod"))
    assert "| `keep_warm` | setting | endpoint.json workers.min | `0` |  |" in result.stdout


def test_not_offered_options_are_build_notes_when_asked_for() -> None:
    for case in ALL:
        app = load_app(case.ref)
        for target in target_names():
            rendered = get_target(target).render(app)
            for name, carried in get_target(target).options(app).items():
                if carried.how == "not offered" and name in ("keep_warm", "secrets") and getattr(app.spec, name):
                    assert f"{name}: {carried.note}" in rendered.notes, (case.key, target, name)


def test_the_drain_promised_is_the_drain_done() -> None:
    """The docs and the Docker README name the grace period the runtime uses, from one constant."""
    assert f"up to {DEFAULT_GRACE_SECONDS} s" in (ROOT / "docs" / "targets" / "docker.md").read_text()
    readme = get_target("docker").render(load_app(TEXT.ref)).files["README.md"]
    assert f"up to {DEFAULT_GRACE_SECONDS} s" in " ".join(readme.split())

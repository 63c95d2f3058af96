from __future__ import annotations

from pathlib import Path

import pytest

from gpuserve.errors import LoadError
from gpuserve.loader import load_app
from tests.apps import ROOT


def test_file_reference_with_and_without_class() -> None:
    with_class = load_app(f"{ROOT}/examples/hello/app.py:Hello")
    without = load_app(f"{ROOT}/examples/hello/app.py")
    assert with_class.cls is without.cls
    assert with_class.entry == "app:Hello"
    assert with_class.source == ROOT / "examples/hello/app.py"


def test_two_files_with_the_same_name_both_load() -> None:
    hello = load_app(f"{ROOT}/examples/hello/app.py")
    text = load_app(f"{ROOT}/examples/text-generation/app.py")
    assert hello.cls.__name__ == "Hello" and text.cls.__name__ == "TextGeneration"
    assert hello.entry == "app:Hello" and text.entry == "app:TextGeneration"


def test_module_reference() -> None:
    app = load_app("tests.models.stream:Streamer")
    assert app.cls.__name__ == "Streamer"
    assert app.entry == "tests.models.stream:Streamer"
    assert app.top_level == "tests"  # a package: the whole top-level package is copied along
    assert app.source == ROOT / "tests"


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("missing_file.py:X", "does not exist"),
        (f"{ROOT}/examples/hello/app.py:Nope", "has no class 'Nope'"),
        (f"{ROOT}/tests/apps.py:Case", "not decorated with @gpuserve.model"),
        ("no_such_module_xyz:X", "cannot be imported"),
        (":X", "names no module"),
    ],
)
def test_load_errors(ref: str, fragment: str) -> None:
    with pytest.raises(LoadError, match=fragment):
        load_app(ref)


def test_several_models_need_a_class_name(tmp_path: Path) -> None:
    source = tmp_path / "two.py"
    model = "@gpuserve.model\nclass {}:\n    def predict(self, x: int) -> int:\n        return x\n"
    source.write_text("import gpuserve\n\n" + model.format("A") + "\n" + model.format("B"))
    with pytest.raises(LoadError, match=r"several models \(A, B\)"):
        load_app(str(source))
    assert load_app(f"{source}:B").cls.__name__ == "B"

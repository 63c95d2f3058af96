"""Every rendered file of every app and target, compared byte for byte. Regenerate with --update-golden."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gpuserve.adapters import get_target, target_names
from gpuserve.loader import load_app
from tests.apps import ALL

EXPECTED = Path(__file__).parent / "expected"
CASES = [(case, target) for case in ALL for target in target_names()]


@pytest.mark.parametrize(("case", "target"), CASES, ids=[f"{c.key}-{t}" for c, t in CASES])
def test_rendered_files_match_golden(case, target: str, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
    rendered = get_target(target).render(load_app(case.ref))
    directory = EXPECTED / case.key / target
    if request.config.getoption("--update-golden"):
        shutil.rmtree(directory, ignore_errors=True)
        for rel, text in rendered.files.items():
            (directory / rel).parent.mkdir(parents=True, exist_ok=True)
            (directory / rel).write_text(text, encoding="utf-8")
    expected = {
        str(p.relative_to(directory)): p.read_text(encoding="utf-8") for p in directory.rglob("*") if p.is_file()
    }
    assert sorted(rendered.files) == sorted(expected), (
        "files differ; run pytest tests/golden --update-golden and review the diff"
    )
    for rel, text in rendered.files.items():
        assert text == expected[rel], f"{case.key}/{target}/{rel} differs from its golden file"


@pytest.mark.parametrize("target", target_names())
def test_copied_files_are_the_sources(target: str) -> None:
    """What a build copies (the runtime, the user's code) is byte-identical to its source."""
    for case in ALL:
        rendered = get_target(target).render(load_app(case.ref))
        assert "gpuserve/runtime/host.py" in rendered.copies
        for rel, source in rendered.copies.items():
            assert source.is_file(), rel
        assert not set(rendered.copies) & set(rendered.files)

"""Every rendered file of every app and target, compared byte for byte. Regenerate with --update-golden."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gpuserve.adapters import get_target, target_names
from gpuserve.build import build
from gpuserve.loader import load_app
from tests.apps import ALL, Case

EXPECTED = Path(__file__).parent / "expected"
CASES = [(case, target) for case in ALL for target in target_names()]


@pytest.mark.parametrize(("case", "target"), CASES, ids=[f"{c.key}-{t}" for c, t in CASES])
def test_rendered_files_match_golden(case: Case, target: str, request: pytest.FixtureRequest) -> None:
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
def test_copied_files_are_the_sources(target: str, tmp_path: Path) -> None:
    """What a build writes for the runtime and the user's code is byte-identical to its source."""
    for case in ALL:
        app = load_app(case.ref)
        rendered = get_target(target).render(app)
        assert "gpuserve/runtime/host.py" in rendered.copies and f"{app.top_level}.py" in rendered.copies
        assert not set(rendered.copies) & set(rendered.files)
        out = build(app, target, tmp_path / case.key / target).directory
        for rel, source in rendered.copies.items():
            assert (out / rel).read_bytes() == source.read_bytes(), rel

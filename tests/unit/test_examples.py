"""Every example is a fixture the tests run: none may be added without joining tests/apps.py."""

from __future__ import annotations

from tests.apps import EXAMPLES, ROOT


def test_every_example_is_run_by_the_tests() -> None:
    on_disk = {str(p) for p in (ROOT / "examples").glob("*/app.py")}
    covered = {case.ref.split(":")[0] for case in EXAMPLES}
    assert on_disk == covered

"""`gpuserve test`, run as a user runs it: every example on every target, a target that differs, an inputs file.

The command installs each target in the virtualenvs the other target tests use (GPUSERVE_VENVS=tests/venvs.py's
CACHE), so nothing is installed twice. `make test` runs hello, image-filter (files in and out) and the project's
small streaming model on every target; text-generation and embeddings, which only add coverage at the price of
loading torch in every process, are marked `full` (`make test-full`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from gpuserve.adapters import target_names
from gpuserve.cli import ExitStatus
from gpuserve.conformance.reference import Reference
from gpuserve.loader import load_app
from tests.apps import EXAMPLES, ROOT, Case
from tests.venvs import CACHE, python_of, venv_for

EXAMPLE_DIRS = sorted(path.parent for path in (ROOT / "examples").glob("*/app.py"))
IN_MAKE_TEST = {"hello", "image-filter"}  # the rest only add coverage of more examples: `make test-full`
STREAMER = ROOT / "tests" / "models" / "stream.py"
ENDPOINTS = ["docker", "runpod", "cog", "modal .local()", "modal web"]
# Targets that run the Docker target's image by another command: hello alone proves it serves (test time).
HELLO_ONLY = {"kubernetes": ["kubernetes"], "skypilot": ["skypilot"]}  # target -> its endpoints
CaseEnv = Callable[[Case], dict[str, str]]

TWO_FACED = '''\
import sys
from typing import Literal

import gpuserve


@gpuserve.model(name="two-faced")
class TwoFaced:
    """Answers differently under RunPod (its SDK is imported there): what `gpuserve test` must catch."""

    def predict(self, mode: Literal["plain", "platform", "refuse"] = "plain") -> dict[str, str]:
        on_runpod = "runpod" in sys.modules
        if mode == "platform":
            return {"answer": "runpod" if on_runpod else "elsewhere"}
        if mode == "refuse" and on_runpod:
            raise ValueError("refused on runpod only")
        return {"answer": mode}
'''


def gpuserve_test(
    args: list[str], cwd: Path, env: dict[str, str], python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    """`gpuserve test ARGS`, installing into the test virtualenvs, its tables printed wide enough to read."""
    full_env = {**os.environ, **env, "GPUSERVE_VENVS": str(CACHE), "COLUMNS": "250", "PYTHONPATH": str(ROOT)}
    command = [python, "-m", "gpuserve.cli", "test", *args]
    return subprocess.run(command, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=1200)


def section(stdout: str, title: str) -> str:
    """The lines of the table with this title (up to the next table's title)."""
    lines = ("\n" + stdout).split("\n" + title, 1)[1].splitlines()
    end = next((i for i, line in enumerate(lines[1:], 1) if line and line[0] not in "┏┃┡│└"), len(lines))
    return "\n".join(lines[:end])


def cells(table: str) -> list[list[str]]:
    """A table's rows as stripped cells, each row's continuation lines (a wrapped cell) left out."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in table.splitlines() if line.startswith("│")]
    return [row for row in rows if row[0] and row[1]]


def python_with_the_pins(app: Path) -> str:
    """This interpreter when its packages are the versions the example's image pins; else a virtualenv of gpuserve's
    dependencies and those pins. The in-process answer is the reference only where the versions agree (a newer
    transformers cuts the same streamed text into other pieces), and that is what `gpuserve test` warns about."""
    loaded = load_app(str(app))
    if not Reference(loaded).drift():
        return sys.executable
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return python_of(venv_for([*project["dependencies"], "rich>=13", *loaded.spec.image.pip]))


def example_env(directory: Path, case_env: CaseEnv) -> dict[str, str]:
    """The environment the target tests give the example (text-generation's tiny local GPT-2), else offline only."""
    case = next((c for c in EXAMPLES if Path(c.ref.split(":")[0]).parent == directory), None)
    return case_env(case) if case else {"HF_HUB_OFFLINE": "1"}


@pytest.mark.parametrize(
    "app",
    [
        *(
            d / "app.py" if d.name in IN_MAKE_TEST else pytest.param(d / "app.py", marks=pytest.mark.full)
            for d in EXAMPLE_DIRS
        ),
        STREAMER,
    ],
    ids=[*(d.name for d in EXAMPLE_DIRS), "tests-models-stream"],
)
def test_every_target_answers_as_the_model_does(app: Path, case_env: CaseEnv) -> None:
    hello = app.parent.name == "hello"
    targets = ["all"] if hello else [t for t in target_names() if t not in HELLO_ONLY]
    endpoints = ENDPOINTS + [e for names in HELLO_ONLY.values() for e in names] if hello else ENDPOINTS
    result = gpuserve_test(
        [str(app), *(arg for t in targets for arg in ("--target", t))],
        ROOT,
        example_env(app.parent, case_env),
        python_with_the_pins(app),
    )
    print(result.stdout)  # the table and the seconds per target, for `pytest -rA` and `-s`
    assert result.returncode == ExitStatus.OK, result.stdout + result.stderr[-4000:]
    assert "does not have the versions the image pins" not in result.stdout
    header = result.stdout.splitlines()[2]
    assert all(name in header for name in endpoints), header
    checks = int(re.search(r"all (\d+) checks match", result.stdout).group(1))  # type: ignore[union-attr]
    rows = cells(section(result.stdout, "gpuserve test"))
    assert checks == len(rows) * len(endpoints) and len(rows) >= 3


def test_a_target_that_answers_differently_fails_with_the_difference(tmp_path: Path) -> None:
    (tmp_path / "two_faced.py").write_text(TWO_FACED)
    result = gpuserve_test(["two_faced.py", "--target", "docker", "--target", "runpod"], tmp_path, {})
    assert result.returncode == ExitStatus.DIFFERENT, result.stdout + result.stderr[-4000:]
    found = section(result.stdout, "differences")
    assert [row[:2] for row in cells(found)] == [["runpod", 'mode: "platform"'], ["runpod", 'mode: "refuse"']], found
    assert 'output.answer: "elsewhere" in-process, "runpod" on the target' in found
    assert "in-process gave an output, the target a failure of predict" in found
    assert "2 differences from the in-process answers" in result.stdout


def test_inputs_file_sends_those_inputs_and_nothing_else(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"name": "Ada", "language": "fr"}\n{"name": "Grace", "excited": true}\n{"name": ""}\n')
    result = gpuserve_test(["examples/hello/app.py", "--target", "docker", "--inputs", str(inputs)], ROOT, {})
    assert result.returncode == ExitStatus.OK, result.stdout + result.stderr[-4000:]
    rows = cells(section(result.stdout, "gpuserve test"))
    assert [row[0] for row in rows] == ["inputs.jsonl #1", "inputs.jsonl #2", "inputs.jsonl #3"]
    assert [row[1].split()[0] for row in rows] == ["output", "output", "invalid"]  # in-process
    assert [row[2].split()[0] for row in rows] == ["pass", "pass", "pass"]  # docker, the empty name refused too
    assert "all 3 checks match" in result.stdout


def test_an_unreadable_inputs_file_is_a_usage_error(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"name": "Ada"}\n{"name": \n')
    result = gpuserve_test(["examples/hello/app.py", "--inputs", str(inputs)], ROOT, {})
    assert result.returncode == ExitStatus.USAGE
    assert "line 2 is not JSON" in result.stderr and "Traceback" not in result.stderr

"""The wheel ships what the targets need (templates, py.typed, the runtime) and builds targets on its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from gpuserve.adapters import target_names
from tests.apps import HELLO, ROOT


def test_wheel_holds_templates_and_builds_every_target(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("gpuserve-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {str(p.relative_to(ROOT)) for p in (ROOT / "gpuserve" / "templates").rglob("*.j2")}
    assert templates and templates <= names
    assert {
        "gpuserve/py.typed",
        "gpuserve/runtime/host.py",
        "gpuserve/runtime/__main__.py",
        "gpuserve/data/prices.json",
    } <= names
    assert not any(n.startswith(("tests/", "examples/")) for n in names)

    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    where = subprocess.run(
        [sys.executable, "-c", "import gpuserve, json; print(json.dumps(gpuserve.__file__))"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(where.stdout).startswith(str(unpacked))  # the wheel's copy, not this checkout
    built = subprocess.run(
        [sys.executable, "-m", "gpuserve.cli", "build", HELLO.ref, "--target", "all", "-o", "out"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    for target in target_names():
        assert (elsewhere / "out" / target / "README.md").is_file()

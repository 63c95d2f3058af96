"""`gpuserve run --file NAME=PATH --save DIR`: local files in as a client sends them, file outputs saved."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from gpuserve.cli import main as cli
from tests.apps import ROOT

REVERSE = f"{ROOT}/tests/models/fileio.py:FileReverse"


def test_run_sends_a_local_file_and_saves_the_output(tmp_path: Path) -> None:
    picture = tmp_path / "in.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"abc")
    result = CliRunner().invoke(cli, ["run", REVERSE, "--file", f"data={picture}", "--save", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    saved = Path(json.loads(result.output))
    assert saved.parent == tmp_path / "out" and saved.suffix == ".png"
    assert saved.read_bytes() == picture.read_bytes()[::-1]


def test_run_names_every_unreadable_file_at_once(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", REVERSE, "--file", "data", "--file", f"data={tmp_path / 'none.png'}"])
    assert result.exit_code != 0
    assert "give NAME=PATH" in result.output and "none.png: cannot read the file" in result.output


def test_run_answers_a_refused_file_as_invalid_input(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"x" * 5000)
    result = CliRunner().invoke(cli, ["run", REVERSE, "--file", f"data={big}"])
    assert result.exit_code != 0 and "over 4096 bytes" in result.output

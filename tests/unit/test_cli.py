from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from gpuserve.cli import ExitStatus, main
from tests.apps import HELLO, ROOT


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_run_prints_the_output_as_json() -> None:
    code, out, _ = run("run", HELLO.ref, "--input", json.dumps(HELLO.good))
    assert code == 0
    assert json.loads(out) == {"greeting": "Bonjour, Ada!"}


def test_run_with_invalid_input_exits_2_with_the_message() -> None:
    code, out, err = run("run", HELLO.ref, "--input", '{"name": "", "language": "de"}')
    assert code == 2 and out == ""
    assert (
        "invalid input: input.name: String should have at least 1 character; "
        "input.language: Input should be 'en', 'fr' or 'es'"
    ) in err


def test_run_input_from_file_and_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text('{"name": "File"}')
    assert json.loads(run("run", HELLO.ref, "--input", f"@{path}")[1]) == {"greeting": "Hello, File."}
    code, _, err = run("run", HELLO.ref, "--input", "{nope")
    assert code == 2 and "--input is not JSON" in err


def test_inspect_prints_spec_and_schemas() -> None:
    code, out, _ = run("inspect", HELLO.ref)
    report = json.loads(out)
    assert code == 0
    assert report["app"] == "app:Hello"
    assert report["spec"]["concurrency"] == 4
    assert report["input_schema"]["properties"]["name"]["maxLength"] == 64
    assert report["output_schema"] == {"additionalProperties": {"type": "string"}, "type": "object"}
    assert report["predict"] == {"style": "kwargs", "streaming": False, "async": False}


def test_load_errors_are_plain_messages() -> None:
    code, _, err = run("inspect", f"{ROOT}/examples/hello/app.py:Nope")
    assert code == ExitStatus.LOAD and err.startswith("error: APP") and "Traceback" not in err


def test_build_refuses_a_directory_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    code, _, err = run("build", HELLO.ref, "--target", "docker", "-o", str(tmp_path))
    assert code == ExitStatus.BUILD and "exists and was not written by gpuserve build" in err
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_build_all_targets_and_rebuild_in_place(tmp_path: Path) -> None:
    code, out, _ = run("build", HELLO.ref, "--target", "all", "-o", str(tmp_path))
    assert code == 0
    assert (tmp_path / "docker" / "Dockerfile").is_file()
    code, _, _ = run("build", HELLO.ref, "--target", "docker", "-o", str(tmp_path / "docker"))
    assert code == 0


def test_unknown_target_lists_the_choices() -> None:
    code, _, err = run("build", HELLO.ref, "--target", "heroku")
    assert code == 2 and "'heroku' is not one of" in err and "docker" in err


def test_help_is_instant_and_light() -> None:
    code = (
        "import sys; from gpuserve.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit: pass\n"
        "print([m for m in ('jinja2', 'fastapi', 'uvicorn', 'pydantic') if m in sys.modules], file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "serve" in result.stdout and "build" in result.stdout
    assert result.stderr.strip() == "[]"  # not even pydantic: `import gpuserve` loads the spec's side on first use

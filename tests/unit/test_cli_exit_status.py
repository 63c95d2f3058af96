"""Every known failure of every command, run as a real process: a plain message, no traceback, the documented status."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpuserve.cli import ExitStatus
from tests.apps import FAULTY, HELLO, ROOT

# Runs the CLI with matplotlib unimportable, as on an install without the `cost` extra.
NO_MATPLOTLIB = 'import sys; sys.modules["matplotlib"] = None; from gpuserve.cli import main; main()'

SPEC_ERROR_APP = """\
import gpuserve


@gpuserve.model(gpu="NOT-A-GPU", keep_warm=-1)
class Bad:
    def predict(self, x: int) -> int:
        return x
"""

T4_APP = """\
import gpuserve


@gpuserve.model(gpu="T4")
class OnT4:
    def predict(self, x: int) -> int:
        return x
"""


@dataclass(frozen=True)
class Failure:
    """One command line, the status it must exit with, and a piece of the message it must print."""

    name: str
    args: tuple[str, ...]
    status: ExitStatus
    says: str
    without_matplotlib: bool = False


COST = ("cost", "--requests-per-day", "10", "--seconds-per-request", "1")
MISSING = "no/such/app.py"
FAILURES = [
    Failure("serve-missing-app", ("serve", MISSING), ExitStatus.LOAD, "does not exist"),
    Failure("serve-spec-error", ("serve", "{bad}"), ExitStatus.SPEC, "gpu='NOT-A-GPU'"),
    Failure("serve-bad-port", ("serve", HELLO.ref, "--port", "99999"), ExitStatus.USAGE, "--port"),
    Failure("run-missing-app", ("run", MISSING), ExitStatus.LOAD, "does not exist"),
    Failure("run-no-such-class", ("run", f"{ROOT}/examples/hello/app.py:Nope"), ExitStatus.LOAD, "no class 'Nope'"),
    Failure("run-spec-error", ("run", "{bad}"), ExitStatus.SPEC, "keep_warm=-1"),
    Failure("run-input-not-json", ("run", HELLO.ref, "--input", "{nope"), ExitStatus.USAGE, "--input is not JSON"),
    Failure("run-input-file-missing", ("run", HELLO.ref, "--input", "@{tmp}/none.json"), ExitStatus.USAGE, "none.json"),
    Failure("run-invalid-input", ("run", HELLO.ref, "--input", '{"name": ""}'), ExitStatus.USAGE, "input.name"),
    Failure("run-predict-raises", ("run", FAULTY.ref, "--input", '{"fail": true}'), ExitStatus.FAILED, "ValueError"),
    Failure("inspect-missing-app", ("inspect", MISSING), ExitStatus.LOAD, "does not exist"),
    Failure("inspect-spec-error", ("inspect", "{bad}"), ExitStatus.SPEC, "2 problems"),
    Failure("build-missing-app", ("build", MISSING, "--target", "docker"), ExitStatus.LOAD, "does not exist"),
    Failure("build-spec-error", ("build", "{bad}", "--target", "docker"), ExitStatus.SPEC, "NOT-A-GPU"),
    Failure(
        "build-target-lacks-gpu",
        ("build", "{t4}", "--target", "runpod", "-o", "{tmp}/out"),
        ExitStatus.BUILD,
        "gpu='T4'",
    ),
    Failure(
        "build-foreign-directory",
        ("build", HELLO.ref, "--target", "docker", "-o", "{tmp}/foreign"),
        ExitStatus.BUILD,
        "was not written by gpuserve build",
    ),
    Failure("build-unknown-target", ("build", HELLO.ref, "--target", "heroku"), ExitStatus.USAGE, "'heroku'"),
    Failure("cost-missing-app", ("cost", MISSING, *COST[1:]), ExitStatus.LOAD, "does not exist"),
    Failure("cost-spec-error", ("cost", "{bad}", *COST[1:]), ExitStatus.SPEC, "NOT-A-GPU"),
    Failure("cost-bad-cold-start", (*COST, "--cold-start-seconds", "aws=3"), ExitStatus.USAGE, "PROVIDER=SECONDS"),
    Failure(
        "cost-cold-start-not-a-number",
        (*COST, "--cold-start-seconds", "modal=soon"),
        ExitStatus.USAGE,
        "not a number of seconds",
    ),
    Failure("cost-bad-gpu", (*COST, "--gpu", "H1000"), ExitStatus.USAGE, "--gpu 'H1000'"),
    Failure("cost-bad-profile", (*COST, "--profile", "{tmp}/profile.json"), ExitStatus.USAGE, "24 non-negative"),
    Failure("cost-bad-price-file", (*COST, "--prices", "{tmp}/prices.json"), ExitStatus.USAGE, "price file"),
    Failure("cost-no-traffic", ("cost", "--seconds-per-request", "1"), ExitStatus.USAGE, "or --trace FILE"),
    Failure("cost-bad-trace", ("cost", "--trace", "{tmp}/profile.json"), ExitStatus.USAGE, "no `timestamp` column"),
    Failure(
        "cost-trace-and-rate",
        ("cost", "--trace", "{tmp}/trace.csv", "--requests-per-day", "5"),
        ExitStatus.USAGE,
        "give one",
    ),
    Failure(
        "cost-trace-bad-time",
        ("cost", "--trace", "{tmp}/trace.csv", "--seconds-per-request", "1"),
        ExitStatus.USAGE,
        "line 2",
    ),
    Failure(
        "cost-plot-without-matplotlib",
        (*COST, "--gpu", "H100", "--plot", "{tmp}/cost.png"),
        ExitStatus.USAGE,
        "--plot needs matplotlib",
        without_matplotlib=True,
    ),
    Failure("unknown-command", ("launch", HELLO.ref), ExitStatus.USAGE, "No such command"),
]


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    """The files the failures name: a spec error, a GPU RunPod lacks, a directory gpuserve did not write, bad JSON."""
    (tmp_path / "bad.py").write_text(SPEC_ERROR_APP)
    (tmp_path / "t4.py").write_text(T4_APP)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("not gpuserve's")
    (tmp_path / "profile.json").write_text("[1, 2]")
    (tmp_path / "prices.json").write_text('{"providers": {}')
    (tmp_path / "trace.csv").write_text("timestamp,duration_s\nyesterday,1\n")
    return {"tmp": str(tmp_path), "bad": str(tmp_path / "bad.py"), "t4": str(tmp_path / "t4.py")}


@pytest.mark.parametrize("failure", FAILURES, ids=[f.name for f in FAILURES])
def test_known_failures_print_a_message_and_exit_with_their_status(
    failure: Failure, places: dict[str, str], tmp_path: Path
) -> None:
    args = list(failure.args)
    for name, value in places.items():
        args = [arg.replace(f"{{{name}}}", value) for arg in args]
    start = ["-c", NO_MATPLOTLIB] if failure.without_matplotlib else ["-m", "gpuserve.cli"]
    result = subprocess.run([sys.executable, *start, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == failure.status, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert failure.says in result.stderr, result.stderr
    assert result.stdout == ""


def test_the_exit_status_table_in_the_docs_is_the_one_the_cli_uses() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| `?(\d+)`? \|", section, flags=re.MULTILINE)}
    assert documented == {int(status) for status in ExitStatus}

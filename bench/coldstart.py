"""Cold start: from process start to the first good answer, gpuserve against hand-written, and `import gpuserve`.

Each server process is started on one CPU and polled from the other (a POST every 2 ms) until it answers the
no-op's input correctly; the table keeps the median of the repeats. Python's bytecode is compiled first, as an
install and the images compile it (compile_as_deployed). RunPod runs in the virtualenv the
integration tests use for it (tests/venvs.py), with its local API (`--rp_serve_api`, POST /runsync).

    python bench/coldstart.py [--repeats 7] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from _harness import ROOT, cpus, free_port, http, pinned, stop, table, versions
from handlers import build, platform_python

BODY = b'{"input": {"text": "hi"}}'
UVICORN = ["-m", "uvicorn", "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]


@dataclass(frozen=True)
class Start:
    name: str
    pair: str  # the comparison it belongs to; the hand-written one of each pair is the baseline
    args: tuple[str, ...]  # PORT is replaced by the port
    path: str  # where the first answer is asked for
    platform: str = ""  # "runpod": run in RunPod's virtualenv, in the built directory
    baseline: bool = False


STARTS = (
    Start(
        "FastAPI hand-written (uvicorn)",
        "serve",
        (*UVICORN, "--port", "PORT", "bench.apps.fastapi_app:app"),
        "/predict",
        baseline=True,
    ),
    Start(
        "gpuserve serve",
        "serve",
        ("-m", "gpuserve.cli", "serve", "bench/apps/noop.py:Noop", "--port", "PORT"),
        "/predict",
    ),
    Start(
        "python -m gpuserve.runtime (containers)",
        "serve",
        ("-m", "gpuserve.runtime", "bench/apps/noop.py:Noop", "--port", "PORT"),
        "/predict",
    ),
    Start(
        "RunPod hand-written handler",
        "runpod",
        ("minimal_handler.py", "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", "PORT"),
        "/runsync",
        platform="runpod",
        baseline=True,
    ),
    Start(
        "RunPod gpuserve handler",
        "runpod",
        ("handler.py", "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", "PORT"),
        "/runsync",
        platform="runpod",
    ),
)


def first_answer(start: Start, python: str, cwd: Path, timeout: float = 120.0) -> float:
    """Seconds from starting the process to its first correct answer."""
    server_cpus, poll_cpus = cpus()
    if poll_cpus:
        os.sched_setaffinity(0, poll_cpus)
    port = free_port()
    command = [python, *(str(port) if a == "PORT" else a for a in start.args)]
    url = f"http://127.0.0.1:{port}{start.path}"
    began = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pinned(server_cpus),
        start_new_session=True,
    )
    try:
        while time.perf_counter() - began < timeout:
            status, answer = http(url, BODY, timeout=5.0)
            if status == 200 and json.loads(answer).get("output") == "hi":
                return time.perf_counter() - began
            if process.poll() is not None:
                raise RuntimeError(f"{start.name} exited with {process.returncode} before answering")
            time.sleep(0.002)
        raise RuntimeError(f"{start.name} gave no good answer within {timeout:g} s")
    finally:
        stop(process)


def compile_as_deployed(runpod_python: str, runpod_dir: Path) -> None:
    """Bytecode where a deployment has it: pip compiles an installed gpuserve, and the images compile gpuserve and
    the model's code as they are built (their RUN step, as the Dockerfile reads). Without it, a machine that sets
    PYTHONDONTWRITEBYTECODE (as the images do) compiles them again at every start."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "gpuserve", "bench/apps"], cwd=ROOT, check=True)
    dockerfile = (runpod_dir / "Dockerfile").read_text().splitlines()
    step = next(line for line in dockerfile if "compileall" in line).removeprefix("RUN ")
    step = step.replace("python -m compileall", f"{shlex.quote(runpod_python)} -m compileall")
    subprocess.run(["sh", "-c", step], cwd=runpod_dir, check=True)


# What each kind of program imports: a model's module (the decorator, so pydantic), an application that only calls
# a model (the client, so httpx), and the package alone; `pass` is Python's own start.
IMPORTS = {
    "python -c pass": "pass",
    "import gpuserve": "import gpuserve",
    "from gpuserve import model": "from gpuserve import model",
    "import gpuserve.client": "import gpuserve.client",
}


def import_seconds(repeats: int) -> dict[str, float]:
    """Median seconds of each of IMPORTS in a fresh `python -c`, on the server's CPU, interleaved."""
    server_cpus, _ = cpus()

    def timed(code: str) -> float:
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, preexec_fn=pinned(server_cpus))
        return time.perf_counter() - began

    runs = [{name: timed(code) for name, code in IMPORTS.items()} for _ in range(repeats)]
    return {name: statistics.median(run[name] for run in runs) for name in IMPORTS}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="starts of each; the median is kept")
    parser.add_argument("--quick", action="store_true", help="one start of each: only shows the script works")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    seconds: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        runpod_dir = build("runpod", "Noop", Path(tmp))
        runpod_python = platform_python("runpod", runpod_dir)
        compile_as_deployed(runpod_python, runpod_dir)
        for repeat in range(repeats):
            for start in STARTS:  # interleaved, so a slow moment of the machine hits every row alike
                print(f"start {repeat + 1}/{repeats}: {start.name}", file=sys.stderr, flush=True)
                python, cwd = (runpod_python, runpod_dir) if start.platform else (sys.executable, ROOT)
                seconds.setdefault(start.name, []).append(first_answer(start, python, cwd))
    medians = {name: statistics.median(found) for name, found in seconds.items()}
    rows = []
    for start in STARTS:
        base = next(medians[s.name] for s in STARTS if s.pair == start.pair and s.baseline)
        got = medians[start.name]
        rows.append([start.name, got * 1000, min(seconds[start.name]) * 1000, f"{got / base:.2f}x"])
    imports = import_seconds(max(3, repeats))
    server_cpus, poll_cpus = cpus()
    print(f"# Cold start: process start to first good answer, median of {repeats} start(s)")
    print(f"# {versions('gpuserve', 'fastapi', 'uvicorn', 'uvloop', 'httptools', 'pydantic')}; runpod in its own venv")
    print(f"# servers on CPU {sorted(server_cpus or [])}, polled from CPU {sorted(poll_cpus or [])}")
    print(table(["server", "median ms", "best ms", "vs hand-written"], rows))
    print("\n" + table(["import", "median ms"], [[name, got * 1000] for name, got in imports.items()]))
    if args.json:
        args.json.write_text(json.dumps({"starts": seconds, "imports_s": imports}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

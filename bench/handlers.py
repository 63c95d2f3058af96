"""Per-job overhead on RunPod and cog: gpuserve's generated handler and runner against minimal hand-written ones.

Each runs in the platform's own local runtime, in the virtualenv the integration tests use for it (tests/venvs.py):
RunPod's `--rp_serve_api` (POST /runsync) and cog's HTTP server (POST /predictions), one connection, so a job's
time is all the platform's and the handler's. The model is the async no-op of bench/apps/noop.py (and the sync one);
the hand-written ones return the input's text. cog answers 409 to a prediction that arrives before its slot is
free again, even on one connection: those are counted apart, and jobs/s counts the predictions answered 2xx.
A platform's servers start together, anew every --restart-every rounds, and take turns, round after round; each
ratio is the median of the rounds' ratios. The hand-written one runs twice (A/A): that row is the noise floor.
Every row's handler or run() is also timed inside its own process by one wrapper (bench_timer.py, written beside
the built files): gpuserve's own time a job, which the whole job's run-to-run noise hides.

    python bench/handlers.py [--seconds 10] [--rounds 3] [--restart-every 1] [--only runpod|cog] [--thread-baseline]
                             [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from _harness import (
    INTERVAL,
    ROOT,
    Load,
    cpus,
    free_port,
    http,
    load,
    load_generator,
    measured,
    median,
    median_interval,
    median_load,
    middle_half,
    server,
    table,
    versions,
)

sys.path.insert(0, str(ROOT))
from gpuserve.adapters._common import PINS  # noqa: E402
from tests.venvs import python_of, requirement_lines, venv_for  # noqa: E402

BODY = b'{"input": {"text": "hi"}}'

RUNPOD_MINIMAL = '''"""A minimal hand-written RunPod handler: the no-op."""

import runpod


async def handler(job):
    return job["input"]["text"]


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
'''

RUNPOD_THREAD = '''"""A hand-written RunPod handler whose sync work runs in a thread, so RunPod's loop stays free."""

import asyncio

import runpod


def work(text):
    return text


async def handler(job):
    return await asyncio.to_thread(work, job["input"]["text"])


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
'''

COG_MINIMAL = '''"""A minimal hand-written cog runner: the no-op."""

from cog import BaseRunner, Input


class Runner(BaseRunner):
    def setup(self) -> None:
        pass

    def run(self, text: str = Input()) -> str:
        return text
'''

COG_MINIMAL_ASYNC = '''"""A minimal hand-written cog runner with an async run(), which coglet runs on its own loop."""

from cog import BaseRunner, Input


class Runner(BaseRunner):
    def setup(self) -> None:
        pass

    async def run(self, text: str = Input()) -> str:
        return text
'''


# gpuserve's own time a job, measured inside the platform's process: every row's handler (RunPod) or run() (cog) is
# wrapped in the same timer, so what differs between rows is the code inside it. Its cost (two clock reads and an
# append, about 1 µs) is in every row alike.
TIMER = '''"""Times a handler or run(): µs per call, appended to $BENCH_INSIDE_OUT 256 at a time and at exit."""

import atexit
import functools
import inspect
import os
import time

_times = []
_calls = 0


def _write():
    with open(os.environ["BENCH_INSIDE_OUT"], "a") as out:
        out.write("".join(f"{seconds * 1e6:.2f}\\n" for seconds in _times))
    _times.clear()


atexit.register(_write)


def _record(seconds):
    global _calls
    _calls += 1
    _times.append(seconds)
    if len(_times) >= 256:
        _write()


def timed_later(fn):
    """fn, timed into $BENCH_INSIDE_OUT.later: work a handler leaves for after its jobs (gpuserve's request lines).
    Each line: the process, the µs, and the calls timed so far (the jobs that work can have been for)."""

    @functools.wraps(fn)
    def timed_after(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.perf_counter() - started
            with open(os.environ["BENCH_INSIDE_OUT"] + ".later", "a") as out:
                out.write(f"{os.getpid()} {spent * 1e6:.2f} {_calls}\\n")

    return timed_after


def timed(fn):
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def timed_async(*args, **kwargs):
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                _record(time.perf_counter() - started)

        return timed_async

    @functools.wraps(fn)
    def timed_sync(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _record(time.perf_counter() - started)

    return timed_sync
'''

RUNPOD_TIMED = '''"""The RunPod handler file $BENCH_INSIDE_ENTRY, run as its own __main__, with its handler timed."""

import os
import runpy
import signal
import sys

import runpod
from bench_timer import timed, timed_later

# uvicorn raises the SIGTERM that stopped it again once it has, to the handler it found: exit, so atexit runs
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
_start = runpod.serverless.start


def start(config):
    logs = sys.modules.get("gpuserve.runtime.logs")  # gpuserve's handler writes its request lines after the job
    if logs is not None:
        logs._flush = timed_later(logs._flush)
    _start({**config, "handler": timed(config["handler"])})


runpod.serverless.start = start
runpy.run_path(os.environ["BENCH_INSIDE_ENTRY"], run_name="__main__")
'''

COG_TIMED = '''"""The cog Runner of $BENCH_INSIDE_ENTRY (file.py:Runner) with its run() timed."""

import importlib
import os

from bench_timer import timed

_file, _name = os.environ["BENCH_INSIDE_ENTRY"].split(":")
Runner = getattr(importlib.import_module(_file.removesuffix(".py")), _name)
Runner.run = timed(Runner.run)
'''


@dataclass(frozen=True)
class Case:
    name: str
    platform: str  # "runpod" or "cog"
    entry: str  # the handler file (runpod) or "file.py:Runner" (cog)
    model: str = "Noop"  # of bench/apps/noop.py: Noop (async predict) or NoopSync
    baseline: bool = False


def build(platform: str, model: str, into: Path) -> Path:
    """Render the no-op model for `platform` with gpuserve's own CLI and add the hand-written file beside it."""
    directory = into / f"{platform}-{model}"
    command = [sys.executable, "-m", "gpuserve.cli", "build", f"bench/apps/noop.py:{model}", "--target", platform]
    subprocess.run([*command, "-o", str(directory)], cwd=ROOT, check=True, capture_output=True)
    (directory / "minimal_handler.py").write_text(RUNPOD_MINIMAL)
    (directory / "minimal_runner.py").write_text(COG_MINIMAL)
    (directory / "minimal_async_runner.py").write_text(COG_MINIMAL_ASYNC)
    (directory / "thread_handler.py").write_text(RUNPOD_THREAD)
    (directory / "bench_timer.py").write_text(TIMER)
    (directory / "timed_handler.py").write_text(RUNPOD_TIMED)
    (directory / "timed_runner.py").write_text(COG_TIMED)
    return directory


def platform_python(platform: str, directory: Path) -> str:
    lines = requirement_lines(directory / "requirements.txt")
    return python_of(venv_for(lines + ([f"cog=={PINS['cog']}"] if platform == "cog" else [])))


# Both platforms run their workers unbuffered: RunPod's docs start a worker with `python -u handler.py`, cog's
# images set PYTHONUNBUFFERED (it is on cog's list of variables a project may not set), and gpuserve's images set it
# too. Each line a worker prints is then a write of its own, as it is deployed (--buffered: Python's default).
AS_DEPLOYED = {"PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class Running:
    case: Case
    url: str
    process: subprocess.Popen[bytes]


def inside_file(case: Case, into: Path) -> Path:
    """Where the case's processes append their µs inside the handler or run(), one a line."""
    return into / ("inside-" + "".join(c if c.isalnum() else "_" for c in case.name) + ".txt")


def local_server(
    platform: str, python: str, port: int, entry: str
) -> tuple[list[str], dict[str, str], tuple[str, bytes], str]:
    """The platform's local server for `entry` (RunPod: a handler file; cog: "file.py:Runner") on `port`: the
    arguments after `python`, its environment, its readiness path and body, and the path a job is sent to."""
    if platform == "runpod":
        arguments = [entry, "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
        return arguments, {}, ("/openapi.json", b""), "/runsync"
    bin_dir = str(Path(python).parent)
    env = {"PORT": str(port), "COG_PREDICT_TYPE_STUB": entry, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    return ["-m", "cog.server.http", "--host", "127.0.0.1"], env, ("/health-check", b'"READY"'), "/predictions"


def start(case: Case, directory: Path, stack: contextlib.ExitStack, inside: Path, buffered: bool = False) -> Running:
    """The case's platform server, its handler or run() timed into `inside`, started (stopped when `stack`
    closes) and checked to answer the no-op."""
    server_cpus, _ = cpus()
    python = platform_python(case.platform, directory)
    port = free_port()
    entry = "timed_handler.py" if case.platform == "runpod" else "timed_runner.py:Runner"
    arguments, env, ready, path = local_server(case.platform, python, port, entry)
    command = [python, *arguments]
    env |= {"BENCH_INSIDE_ENTRY": case.entry, "BENCH_INSIDE_OUT": str(inside)}
    running = stack.enter_context(
        server(
            case.name,
            command,
            port=port,
            ready_path=ready[0],
            ready_body=ready[1],
            cpu_set=server_cpus,
            cwd=directory,
            env=env if buffered else {**env, **AS_DEPLOYED},
        )
    )
    status, answer = http(running.url + path, BODY)
    if status != 200 or json.loads(answer).get("output") != "hi":
        raise RuntimeError(f"{case.name} answered {status} {answer!r} to {BODY!r}")
    return Running(case, running.url + path, running.process)


def measure(running: Running, connections: int, seconds: float, warmup: float) -> tuple[Load, float]:
    """The platform server's load, and its CPU microseconds per job answered 2xx."""
    _, load_cpus = cpus()
    if warmup > 0:
        load(running.url, BODY, connections=connections, seconds=warmup, cpu_set=load_cpus, warmup=0)
    return measured(
        running.process,
        lambda: load(
            running.url, BODY, connections=connections, seconds=seconds, cpu_set=load_cpus, warmup=0, settle=0
        ),
    )


# The same hand-written handler in a second process: its row is this machine's noise floor. Two processes of one
# program differ here by up to a fifth, for a run's whole life (seen: 0.83x), hence --restart-every too.
A_A = "{} hand-written again (A/A)"

CASES = (
    Case("RunPod hand-written", "runpod", "minimal_handler.py", baseline=True),
    Case(A_A.format("RunPod"), "runpod", "minimal_handler.py"),
    Case("RunPod gpuserve (async predict)", "runpod", "handler.py"),
    Case("RunPod gpuserve (sync predict)", "runpod", "handler.py", model="NoopSync"),
    Case("RunPod hand-written, sync work in a thread", "runpod", "thread_handler.py"),
    Case("cog hand-written", "cog", "minimal_runner.py:Runner", baseline=True),
    Case(A_A.format("cog"), "cog", "minimal_runner.py:Runner"),
    Case("cog hand-written, async run()", "cog", "minimal_async_runner.py:Runner"),
    Case("cog gpuserve (async predict)", "cog", "runner.py:Runner"),
    Case("cog gpuserve (sync predict)", "cog", "runner.py:Runner", model="NoopSync"),
)


def time_ratios(base: Sequence[Load], mine: Sequence[Load]) -> list[float]:
    """Time per 2xx job against the hand-written one of the same round, round by round."""
    return [theirs.good_rps / ours.good_rps for theirs, ours in zip(base, mine, strict=True)]


def cpu_ratio(base: Sequence[float], mine: Sequence[float]) -> float:
    """Server CPU per 2xx job against the hand-written one of the same round, the median over the rounds."""
    return median([ours / theirs for theirs, ours in zip(base, mine, strict=True)])


def read_inside(path: Path) -> float:
    """The median µs a call spent inside the handler or run(), over every call the case's processes timed, and
    the mean µs a call of what the handler left for after its job (gpuserve's RunPod request lines)."""
    if not path.exists():
        return float("nan")  # no call timed (a process stopped before it wrote any)
    inside = median([float(line) for line in path.read_text().split()])
    later = path.with_name(path.name + ".later")
    if not later.exists():
        return inside
    spent, jobs = 0.0, dict[str, int]()
    for line in later.read_text().splitlines():
        pid, us, calls = line.split()
        spent += float(us)
        jobs[pid] = max(jobs.get(pid, 0), int(calls))
    return inside + spent / max(1, sum(jobs.values()))


def share(base_inside: float, inside: float, base: Load) -> float:
    """The time a row spends inside its handler or run() beyond the hand-written one's, as a share of the
    hand-written job (its µs per job): gpuserve's own per-job cost, without the run-to-run noise of the whole."""
    return (inside - base_inside) / (1e6 / base.good_rps)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median round is kept")
    parser.add_argument("--quick", action="store_true", help="a tiny load that only shows the script works")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--only", help="a platform to measure alone: runpod or cog")
    parser.add_argument(
        "--thread-baseline",
        action="store_true",
        help="also a hand-written RunPod handler whose sync work runs in a thread (asyncio.to_thread)",
    )
    parser.add_argument("--buffered", action="store_true", help="Python's default output buffering, not -u")
    parser.add_argument(
        "--restart-every",
        type=int,
        default=1,
        help="rounds between fresh server processes (one process can be a fifth slower than another for its life)",
    )
    args = parser.parse_args(argv)
    cases = tuple(
        case
        for case in CASES
        if args.only in (None, case.platform) and (args.thread_baseline or not case.entry.startswith("thread_"))
    )
    seconds, rounds, warmup = (1.0, 1, 0.0) if args.quick else (args.seconds, args.rounds, 1.0)
    runs: dict[str, list[Load]] = {}
    cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-handlers-") as tmp:
        built = {
            (platform, model): build(platform, model, Path(tmp))
            for platform in sorted({case.platform for case in cases})
            for model in ("Noop", "NoopSync")
        }
        every = max(1, args.restart_every)
        for platform in sorted({case.platform for case in cases}):
            # A platform's servers start together and take turns, round after round: paired rounds. They start
            # anew every `every` rounds, so that no one process's luck decides a row.
            group = [case for case in cases if case.platform == platform]
            for first in range(0, rounds, every):
                with contextlib.ExitStack() as stack:
                    servers = [
                        start(case, built[(platform, case.model)], stack, inside_file(case, Path(tmp)), args.buffered)
                        for case in group
                    ]
                    for round_number in range(first, min(first + every, rounds)):  # reversed every other round
                        for running in servers if round_number % 2 == 0 else servers[::-1]:
                            name = running.case.name
                            print(f"round {round_number + 1}/{rounds}: {name}", file=sys.stderr, flush=True)
                            result, spent = measure(running, 1, seconds, warmup if round_number == first else 0.0)
                            runs.setdefault(name, []).append(result)
                            cpu.setdefault(name, []).append(spent)
        inside = {case.name: read_inside(inside_file(case, Path(tmp))) for case in cases}
    results = {name: median_load(found) for name, found in runs.items()}
    cpu_us = {name: median(found) for name, found in cpu.items()}
    rows = []
    for case in cases:
        got = results[case.name]
        base = next(c.name for c in cases if c.platform == case.platform and c.baseline)
        ratios = time_ratios(runs[base], runs[case.name])
        rows.append(
            [
                case.name,
                got.good_rps,
                1e6 / got.good_rps,
                cpu_us[case.name],
                f"{cpu_ratio(cpu[base], cpu[case.name]):.2f}x",
            ]
            + [got.p50_ms, got.errors, f"{median(ratios):.2f}x"]
            + (["-", "-"] if case.baseline else [middle_half(ratios), median_interval(ratios)])
            + [
                inside[case.name],
                "-" if case.baseline else f"{share(inside[base], inside[case.name], results[base]):+.1%}",
            ]
        )
    server_cpus, load_cpus = cpus()
    print(
        f"# Per-job overhead: no-op, one connection, {seconds:g} s per run, median of {rounds} round(s), "
        f"fresh servers every {every} round(s)"
    )
    print(f"# {versions('gpuserve')}; runpod {PINS['runpod']}, cog {PINS['cog']} (their local runtimes)")
    print(f"# server on CPU {sorted(server_cpus or [])}, {load_generator()} on CPU {sorted(load_cpus or [])}")
    print("# output buffering: " + ("Python's default (--buffered)" if args.buffered else "none, as deployed (-u)"))
    headers = ["handler", "jobs/s (2xx)", "µs per job", "server CPU µs per job", "CPU vs hand-written"]
    headers += ["p50 ms", "non-2xx", "time vs hand-written", "middle half of rounds", INTERVAL]
    headers += ["µs inside handler or run()", "that beyond hand-written, of its job"]
    print(table(headers, rows))
    if args.json:
        base_of = {c.platform: c.name for c in cases if c.baseline}
        out = [
            {
                "case": case.name,
                **asdict(results[case.name]),
                "cpu_us_per_job": cpu_us[case.name],
                "inside_us": inside[case.name],
                "time_ratios": time_ratios(runs[base_of[case.platform]], runs[case.name]),  # round by round
            }
            for case in cases
        ]
        args.json.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

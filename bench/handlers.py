"""Per-job overhead on RunPod and cog: gpuserve's generated handler and runner against minimal hand-written ones.

Each runs in the platform's own local runtime, in the virtualenv the integration tests use for it (tests/venvs.py):
RunPod's `--rp_serve_api` (POST /runsync) and cog's HTTP server (POST /predictions), one connection, so a job's
time is all the platform's and the handler's. The model is the async no-op of bench/apps/noop.py (and the sync one);
the hand-written ones return the input's text. cog answers 409 to a prediction that arrives before its slot is
free again, even on one connection: those are counted apart, and jobs/s counts the predictions answered 2xx.

    python bench/handlers.py [--seconds 10] [--rounds 3] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from _harness import (
    ROOT,
    Load,
    cpus,
    free_port,
    http,
    load,
    load_generator,
    measured,
    median,
    median_load,
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

COG_MINIMAL = '''"""A minimal hand-written cog runner: the no-op."""

from cog import BaseRunner, Input


class Runner(BaseRunner):
    def setup(self) -> None:
        pass

    def run(self, text: str = Input()) -> str:
        return text
'''


@dataclass(frozen=True)
class Case:
    name: str
    platform: str  # "runpod" or "cog"
    entry: str  # the handler file (runpod) or "file.py:Runner" (cog)
    baseline: bool = False


def build(platform: str, model: str, into: Path) -> Path:
    """Render the no-op model for `platform` with gpuserve's own CLI and add the hand-written file beside it."""
    directory = into / f"{platform}-{model}"
    command = [sys.executable, "-m", "gpuserve.cli", "build", f"bench/apps/noop.py:{model}", "--target", platform]
    subprocess.run([*command, "-o", str(directory)], cwd=ROOT, check=True, capture_output=True)
    (directory / "minimal_handler.py").write_text(RUNPOD_MINIMAL)
    (directory / "minimal_runner.py").write_text(COG_MINIMAL)
    return directory


def platform_python(platform: str, directory: Path) -> str:
    lines = requirement_lines(directory / "requirements.txt")
    return python_of(venv_for(lines + ([f"cog=={PINS['cog']}"] if platform == "cog" else [])))


def measure(case: Case, directory: Path, connections: int, seconds: float, warmup: float) -> tuple[Load, float]:
    """The platform server's load, and its CPU microseconds per job answered 2xx."""
    server_cpus, load_cpus = cpus()
    python = platform_python(case.platform, directory)
    port = free_port()
    if case.platform == "runpod":
        command = [python, case.entry, "--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
        env, ready, path = {}, ("/openapi.json", b""), "/runsync"
    else:
        command = [python, "-m", "cog.server.http", "--host", "127.0.0.1"]
        bin_dir = str(Path(python).parent)
        env = {"PORT": str(port), "COG_PREDICT_TYPE_STUB": case.entry, "PATH": f"{bin_dir}:/usr/bin:/bin"}
        ready, path = ("/health-check", b'"READY"'), "/predictions"
    with server(
        case.name,
        command,
        port=port,
        ready_path=ready[0],
        ready_body=ready[1],
        cpu_set=server_cpus,
        cwd=directory,
        env=env,
    ) as running:
        status, answer = http(running.url + path, BODY)
        if status != 200 or json.loads(answer).get("output") != "hi":
            raise RuntimeError(f"{case.name} answered {status} {answer!r} to {BODY!r}")
        url = running.url + path
        if warmup > 0:
            load(url, BODY, connections=connections, seconds=warmup, cpu_set=load_cpus, warmup=0)
        return measured(
            running.process,
            lambda: load(url, BODY, connections=connections, seconds=seconds, cpu_set=load_cpus, warmup=0, settle=0),
        )


CASES = (
    Case("RunPod hand-written", "runpod", "minimal_handler.py", baseline=True),
    Case("RunPod gpuserve (async predict)", "runpod", "handler.py"),
    Case("RunPod gpuserve (sync predict)", "runpod", "handler.py"),
    Case("cog hand-written", "cog", "minimal_runner.py:Runner", baseline=True),
    Case("cog gpuserve (async predict)", "cog", "runner.py:Runner"),
    Case("cog gpuserve (sync predict)", "cog", "runner.py:Runner"),
)


def base_ratio(base: Sequence[Load], mine: Sequence[Load]) -> float:
    """Time per 2xx job against the hand-written one of the same round, the median over the rounds."""
    return median([theirs.good_rps / ours.good_rps for theirs, ours in zip(base, mine, strict=True)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median round is kept")
    parser.add_argument("--quick", action="store_true", help="a tiny load that only shows the script works")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    seconds, rounds, warmup = (1.0, 1, 0.0) if args.quick else (args.seconds, args.rounds, 2.0)
    runs: dict[str, list[Load]] = {}
    cpu: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-handlers-") as tmp:
        built = {
            (platform, model): build(platform, model, Path(tmp))
            for platform in ("runpod", "cog")
            for model in ("Noop", "NoopSync")
        }
        for round_number in range(rounds):
            for case in CASES:
                print(f"round {round_number + 1}/{rounds}: {case.name}", file=sys.stderr, flush=True)
                directory = built[(case.platform, "NoopSync" if "sync" in case.name else "Noop")]
                result, spent = measure(case, directory, 1, seconds, warmup)
                runs.setdefault(case.name, []).append(result)
                cpu.setdefault(case.name, []).append(spent)
    results = {name: median_load(found) for name, found in runs.items()}
    cpu_us = {name: median(found) for name, found in cpu.items()}
    rows = []
    for case in CASES:
        got = results[case.name]
        base = next(c.name for c in CASES if c.platform == case.platform and c.baseline)
        ratio = f"{base_ratio(runs[base], runs[case.name]):.2f}x"
        rows.append(
            [case.name, got.good_rps, 1e6 / got.good_rps, cpu_us[case.name], f"{cpu_us[case.name] / cpu_us[base]:.2f}x"]
            + [got.p50_ms, got.errors, ratio]
        )
    server_cpus, load_cpus = cpus()
    print(f"# Per-job overhead: no-op, one connection, {seconds:g} s per run, median of {rounds} round(s)")
    print(f"# {versions('gpuserve')}; runpod {PINS['runpod']}, cog {PINS['cog']} (their local runtimes)")
    print(f"# server on CPU {sorted(server_cpus or [])}, {load_generator()} on CPU {sorted(load_cpus or [])}")
    headers = ["handler", "jobs/s (2xx)", "µs per job", "server CPU µs per job", "CPU vs hand-written"]
    headers += ["p50 ms", "non-2xx", "time vs hand-written"]
    print(table(headers, rows))
    if args.json:
        out = [{"case": name, **asdict(load), "cpu_us_per_job": cpu_us[name]} for name, load in results.items()]
        args.json.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Serving overhead: the same no-op behind gpuserve, hand-written FastAPI, LitServe and a bare ASGI app.

Each server runs on one CPU, the load generator on the other; every server is measured in each round, in turn,
at each connection count, and the table keeps the round with the median throughput. `vs FastAPI` is the
throughput against the hand-written FastAPI app of the same kind (async against async, sync against sync) in the
same round, the median over the rounds: paired so, a slow moment of a shared machine does not decide it.

    python bench/serving.py [--seconds 10] [--rounds 3] [--connections 1,16,64] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from _harness import (
    INTERVAL,
    ROOT,
    SETTLE_SECONDS,
    Load,
    cpus,
    free_port,
    http,
    load,
    load_generator,
    median,
    median_interval,
    median_load,
    middle_half,
    server,
    table,
    versions,
)

BODY = b'{"input": {"text": "hi"}}'
UVICORN = ["-m", "uvicorn", "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]


@dataclass(frozen=True)
class Contender:
    name: str
    kind: str  # "async" or "sync": which FastAPI row it is compared with
    args: tuple[str, ...]  # after the interpreter; PORT is replaced by the port
    baseline: bool = False


CONTENDERS = (
    Contender("raw ASGI (ceiling)", "async", (*UVICORN, "--port", "PORT", "bench.apps.raw_asgi:app")),
    Contender("FastAPI", "async", (*UVICORN, "--port", "PORT", "bench.apps.fastapi_app:app"), baseline=True),
    Contender("gpuserve", "async", ("-m", "gpuserve.cli", "serve", "bench/apps/noop.py:Noop", "--port", "PORT")),
    Contender("LitServe", "async", ("bench/apps/litserve_app.py", "PORT")),
    Contender("FastAPI sync", "sync", (*UVICORN, "--port", "PORT", "bench.apps.fastapi_app:sync_app"), baseline=True),
    Contender(
        "gpuserve sync", "sync", ("-m", "gpuserve.cli", "serve", "bench/apps/noop.py:NoopSync", "--port", "PORT")
    ),
)


def measure(
    contender: Contender, connections: Sequence[int], seconds: float, warmup: float, settle: float
) -> dict[int, Load]:
    """Start the server once and run the load at each connection count."""
    server_cpus, load_cpus = cpus()
    port = free_port()
    command = [sys.executable, *(str(port) if a == "PORT" else a for a in contender.args)]
    with server(contender.name, command, port=port, ready_path="/health", cpu_set=server_cpus, cwd=ROOT) as running:
        status, answer = http(running.url + "/predict", BODY)
        if status != 200 or json.loads(answer).get("output") != "hi":
            raise RuntimeError(f"{contender.name} answered {status} {answer!r} to {BODY!r}")
        return {
            n: load(
                running.url + "/predict",
                BODY,
                connections=n,
                seconds=seconds,
                cpu_set=load_cpus,
                warmup=warmup,
                settle=settle,
            )
            for n in connections
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median round is kept")
    parser.add_argument("--connections", default="1,16,64", help="comma-separated keep-alive connection counts")
    parser.add_argument("--only", default="", help="comma-separated contender names (default: all)")
    parser.add_argument("--quick", action="store_true", help="a tiny load that only shows the script works")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    seconds, rounds, warmup, settle = (
        (1.0, 1, 0.0, 0.2) if args.quick else (args.seconds, args.rounds, 2.0, SETTLE_SECONDS)
    )
    connections = [int(n) for n in args.connections.split(",")]
    chosen = [c for c in CONTENDERS if not args.only or c.name in args.only.split(",")]

    runs: dict[tuple[str, int], list[Load]] = {}
    for round_number in range(rounds):
        for contender in chosen:
            print(f"round {round_number + 1}/{rounds}: {contender.name}", file=sys.stderr, flush=True)
            for n, result in measure(contender, connections, seconds, warmup, settle).items():
                runs.setdefault((contender.name, n), []).append(result)
    results = {key: median_load(found) for key, found in runs.items()}

    baselines = {c.kind: c.name for c in chosen if c.baseline}
    rows = []
    ratios: dict[tuple[str, int], float] = {}
    for n in connections:
        for contender in chosen:
            got = results[(contender.name, n)]
            base_runs = runs.get((baselines.get(contender.kind, ""), n))
            paired = (
                [  # each round against the baseline of the same round, then the median
                    mine.rps / theirs.rps for mine, theirs in zip(runs[(contender.name, n)], base_runs, strict=True)
                ]
                if base_runs
                else []
            )
            if paired:
                ratios[(contender.name, n)] = median(paired)
            ratio = f"{ratios[(contender.name, n)]:.2f}x" if paired else "-"
            rows.append(
                [
                    contender.name,
                    n,
                    got.rps,
                    got.p50_ms,
                    got.p99_ms,
                    got.errors,
                    ratio,
                ]
                + (["-", "-"] if contender.baseline else [middle_half(paired), median_interval(paired)])
            )
    server_cpus, load_cpus = cpus()
    print(f"# Serving overhead: no-op model, {seconds:g} s per run; req/s and latencies: the median round of {rounds};")
    print(
        "# vs FastAPI: the median over the rounds of req/s against the FastAPI app of the same kind in the same round"
    )
    print(f"# {versions('gpuserve', 'fastapi', 'uvicorn', 'uvloop', 'httptools', 'litserve', 'pydantic')}")
    print(f"# server on CPU {sorted(server_cpus or [])}, {load_generator()} on CPU {sorted(load_cpus or [])}")
    headers = ["server", "connections", "req/s", "p50 ms", "p99 ms", "errors", "vs FastAPI"]
    headers += ["middle half of rounds", INTERVAL]
    print(table(headers, rows))
    if args.json:
        rows_out = [
            {
                "server": k[0],
                "connections": k[1],
                **asdict(v),
                "rounds_rps": [r.rps for r in runs[k]],
                "ratio": ratios.get(k),
            }
            for k, v in results.items()
        ]
        args.json.write_text(json.dumps(rows_out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

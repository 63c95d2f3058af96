"""Batching: the embeddings example (all-MiniLM-L6-v2) under many connections, batched and not, and on LitServe.

gpuserve serves examples/embeddings/app.py as it is (gpuserve.Batch(max_size=16, wait_ms=10)) and a copy of it
without batching (bench/apps/embeddings_unbatched.py: the same setup and forward pass, one text per call);
LitServe serves the same setup and forward pass with the same max_batch_size and batch_timeout. Each server runs
on one CPU with torch on one thread (OMP_NUM_THREADS=1), the load generator on the other; each round measures
every server in turn and the table keeps the round with the median throughput. `ok req/s` counts 2xx answers
only (a server past its queue answers 503 fast, which wrk counts as requests); `vs` compares it with LitServe.
Servers are warmed with requests that all complete (a load generator's warm-up that stops mid-request would
leave its requests queued on a server that takes a second per batch, and the measured run would start behind).

    python bench/batching.py [--seconds 10] [--rounds 3] [--connections 64] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from _harness import ROOT, Load, cpus, free_port, http, load, load_generator, server, table, versions

EXAMPLE = "examples/embeddings/app.py:Embeddings"
BODY = b'{"input": {"text": "A cat sits on the mat, and the dog watches it from the garden."}}'
# The same for every server: torch's threads on the one CPU the server has, tokenizers without a pool of its own.
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


@dataclass(frozen=True)
class Contender:
    name: str
    args: tuple[str, ...]  # after the interpreter; PORT is replaced by the port
    baseline: bool = False


def contenders(max_size: int, wait_ms: float) -> tuple[Contender, ...]:
    serve = ("-m", "gpuserve.cli", "serve")
    unbatched = "bench/apps/embeddings_unbatched.py:EmbeddingsUnbatched"
    litserve = ("bench/apps/litserve_embeddings.py", "PORT", str(max_size), f"{wait_ms:g}")
    return (
        Contender("gpuserve batched", (*serve, EXAMPLE, "--port", "PORT")),
        Contender("gpuserve unbatched", (*serve, unbatched, "--port", "PORT")),
        Contender("LitServe batched", litserve, baseline=True),
    )


def batch_of_example() -> tuple[int, float]:
    """The example's own gpuserve.Batch, so LitServe gets the same max_batch_size and timeout."""
    sys.path.insert(0, str(ROOT))
    from gpuserve.loader import load_app

    batch = load_app(str(ROOT / EXAMPLE)).spec.batch
    assert batch is not None, f"{EXAMPLE} is not batched"
    return batch.max_size, batch.wait_ms


def measure(contender: Contender, connections: Sequence[int], seconds: float, warm: bool) -> dict[int, Load]:
    """Start the server once, check its answer, and run the load at each connection count."""
    server_cpus, load_cpus = cpus()
    port = free_port()
    command = [sys.executable, *(str(port) if a == "PORT" else a for a in contender.args)]
    with server(
        contender.name, command, port=port, ready_path="/health", cpu_set=server_cpus, cwd=ROOT, env=ENV, timeout=180
    ) as running:
        status, answer = http(running.url + "/predict", BODY, timeout=30)
        output = json.loads(answer).get("output", {}) if status == 200 else {}
        if output.get("dimension") != 384 or len(output.get("vector", ())) != 384:
            raise RuntimeError(f"{contender.name} answered {status} {answer[:300]!r} to {BODY!r}")
        results = {}
        for n in connections:
            if warm:
                with ThreadPoolExecutor(n) as pool:  # n requests at once, every one answered
                    list(pool.map(lambda _: http(running.url + "/predict", BODY, timeout=60), range(n)))
            url = running.url + "/predict"
            results[n] = load(url, BODY, connections=n, seconds=seconds, cpu_set=load_cpus, warmup=0)
        return results


def ok_rps(run: Load) -> float:
    """Answers with a 2xx status per second."""
    return run.rps * (run.requests - run.errors) / run.requests if run.requests else 0.0


def median_run(runs: Sequence[Load]) -> Load:
    """The run with the median ok req/s, its own latencies and errors kept with it."""
    return sorted(runs, key=ok_rps)[len(runs) // 2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of load per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median round is kept")
    parser.add_argument("--connections", default="64", help="comma-separated keep-alive connection counts")
    parser.add_argument("--only", default="", help="comma-separated contender names (default: all)")
    parser.add_argument("--quick", action="store_true", help="a tiny load that only shows the script works")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    seconds, rounds, warm = (1.0, 1, False) if args.quick else (args.seconds, args.rounds, True)
    connections = [int(n) for n in args.connections.split(",")]
    max_size, wait_ms = batch_of_example()
    chosen = [c for c in contenders(max_size, wait_ms) if not args.only or c.name in args.only.split(",")]

    runs: dict[tuple[str, int], list[Load]] = {}
    for round_number in range(rounds):
        for contender in chosen:
            print(f"round {round_number + 1}/{rounds}: {contender.name}", file=sys.stderr, flush=True)
            for n, result in measure(contender, connections, seconds, warm).items():
                runs.setdefault((contender.name, n), []).append(result)
    results = {key: median_run(found) for key, found in runs.items()}

    baseline = next((c.name for c in chosen if c.baseline), "")
    rows = []
    for n in connections:
        for contender in chosen:
            got = results[(contender.name, n)]
            base = results.get((baseline, n))
            ratio = f"{ok_rps(got) / ok_rps(base):.2f}x" if base and ok_rps(base) else "-"
            rows.append([contender.name, n, ok_rps(got), got.p50_ms, got.p99_ms, got.errors, ratio])
    server_cpus, load_cpus = cpus()
    print(
        f"# Batching: embeddings (all-MiniLM-L6-v2, CPU, 1 torch thread), max_size {max_size}, wait {wait_ms:g} ms; "
        f"{seconds:g} s per run, median of {rounds} round(s)"
    )
    print(f"# {versions('gpuserve', 'litserve', 'torch', 'transformers', 'fastapi', 'uvicorn', 'pydantic')}")
    print(f"# server on CPU {sorted(server_cpus or [])}, {load_generator()} on CPU {sorted(load_cpus or [])}")
    print(table(["server", "connections", "ok req/s", "p50 ms", "p99 ms", "errors", "vs LitServe"], rows))
    if args.json:
        found = [{"server": k[0], "connections": k[1], **asdict(v)} for k, v in results.items()]
        args.json.write_text(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What gpuserve's server adds to a request: examples/hello over HTTP (uvicorn, loopback, keep-alive) against a
direct call.

Run: .venv/bin/python scripts/bench_overhead.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gpuserve.runtime import ModelHost

ROOT = Path(__file__).resolve().parent.parent
APP = f"{ROOT}/examples/hello/app.py:Hello"
INPUT = {"name": "Ada", "language": "fr", "excited": True}


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def p(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    mean = statistics.fmean(ordered) * 1000
    return f"p50 {p(0.50):.3f} ms, p90 {p(0.90):.3f} ms, p99 {p(0.99):.3f} ms, mean {mean:.3f} ms"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    host = ModelHost.from_ref(APP)
    host.setup()
    direct = []
    for _ in range(args.requests):
        started = time.perf_counter()
        host.predict(INPUT)
        direct.append(time.perf_counter() - started)

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gpuserve.cli", "serve", APP, "--port", str(port), "--log-level", "warning"]
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            for _ in range(200):  # warm up
                client.post("/predict", json={"input": INPUT})
            over_http = []
            for _ in range(args.requests):
                started = time.perf_counter()
                response = client.post("/predict", json={"input": INPUT})
                over_http.append(time.perf_counter() - started)
                assert response.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=15)
    print(f"direct host.predict ({args.requests}):  {percentiles(direct)}")
    print(f"POST /predict over HTTP ({args.requests}): {percentiles(over_http)}")
    added = sorted(over_http)[len(over_http) // 2] - sorted(direct)[len(direct) // 2]
    print(f"added by validation + HTTP + thread hop (p50): {added * 1000:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

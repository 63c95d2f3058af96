"""Auth, uvicorn's limits and the request log on a real `gpuserve serve` process (in-process tests do the rest)."""

from __future__ import annotations

import sys

import httpx

from tests.apps import HELLO, ROOT
from tests.proc import free_port, output_of, started, wait_until

TOKENS = ("first-token-0123456789abcdef", "second-token-0123456789abcdef")


def test_tokens_headers_and_logs_on_a_real_server() -> None:
    port = free_port()
    command = [sys.executable, "-m", "gpuserve.cli", "serve", HELLO.ref, "--port", str(port)]
    env = {"GPUSERVE_AUTH_TOKENS": ",".join(TOKENS), "GPUSERVE_LOG_FORMAT": "json"}
    with started(command, ROOT, env) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        wait_until(lambda: client.get("/health").status_code == 200, 60, "ready", proc)
        refused = client.post("/predict", json={"input": HELLO.good})
        answers = [
            client.post("/predict", json={"input": HELLO.good}, headers={"Authorization": f"Bearer {t}"})
            for t in TOKENS
        ]
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {TOKENS[0]}"})
        flood = client.get("/health", headers={"X-Flood": "x" * 40_000})
        still = client.get("/health")
        proc.terminate()
        proc.wait(timeout=30)
        out = output_of(proc)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "Unauthorized"
    assert [a.status_code for a in answers] == [200, 200]  # either token of a rotation works
    assert metrics.status_code == 200 and "gpuserve_requests_total" in metrics.text
    assert flood.status_code == 431 and flood.json()["error"]["type"] == "HeadersTooLarge"
    assert still.status_code == 200  # serving on
    assert all(token not in out for token in TOKENS), "a token reached the logs"
    assert '"status": 401' in out.replace('"status":401', '"status": 401')

"""One drain contract where gpuserve owns the listener: `gpuserve serve` and the Docker target's command.

Real processes, real signals, on 127.0.0.1: nothing in flight is lost, late requests are told to retry,
/health says draining, shutdown() runs once and the process exits 0 within the grace period.
"""

from __future__ import annotations

import http.server
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gpuserve.build import build
from tests.apps import ROOT
from tests.integration.test_docker_target import cmd_of
from tests.proc import free_port, output_of, started, wait_until
from tests.venvs import python_of, requirement_lines, venv_for

DRAINABLE = f"{ROOT}/tests/models/drainable.py:Drainable"
IN_FLIGHT = 50


@contextmanager
def drainable(mode: str, tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], httpx.Client]]:
    """The drainable model served by `gpuserve serve` or by the Docker target's CMD in a venv of its pins."""
    port = free_port()
    if mode == "serve":
        command = [sys.executable, "-m", "gpuserve.cli", "serve", DRAINABLE, "--port", str(port)]
        cwd = ROOT
    else:
        cwd = build(DRAINABLE, "docker", tmp_path / "docker").directory
        venv = venv_for(requirement_lines(cwd / "requirements.txt"))
        command = [python_of(venv), *cmd_of(cwd / "Dockerfile")[1:]]
        command[command.index("0.0.0.0")] = "127.0.0.1"
        command[command.index("8000")] = str(port)
    # Spot notices are asked for (aws); point the watcher at a port where nothing listens unless a test serves one.
    base_env = {
        "GPUSERVE_SPOT_NOTICE_URL": f"http://127.0.0.1:{free_port()}/notice",
        "GPUSERVE_SPOT_POLL_SECONDS": "0.2",
    }
    with (
        started(command, cwd, base_env | env) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client,
    ):
        wait_until(lambda: client.get("/health").status_code == 200, 60, "ready", proc)
        yield proc, client


def events(log: Path) -> list[str]:
    """The lifecycle events the model recorded, predicts left out."""
    return [e for e in (line.split()[0] for line in log.read_text().splitlines()) if e != "predict"]


def predicts_started(log: Path) -> int:
    return sum(line.startswith("predict ") for line in log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.parametrize("mode", ["serve", "docker"])
def test_sigterm_under_load_loses_nothing(mode: str, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with drainable(mode, tmp_path, {"LIFECYCLE_LOG": str(log)}) as (proc, client):
        base = str(client.base_url)
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            slow = [
                pool.submit(httpx.post, f"{base}/predict", json={"input": {"seconds": 2, "tag": str(i)}}, timeout=30)
                for i in range(IN_FLIGHT)
            ]
            wait_until(lambda: predicts_started(log) == IN_FLIGHT, 20, f"{IN_FLIGHT} predicts running")
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            health = client.get("/health")
            late = client.post("/predict", json={"input": {"seconds": 0, "tag": "late"}})
            answers = [f.result() for f in slow]
        code = proc.wait(timeout=20)
        took = time.monotonic() - signalled
    assert [a.status_code for a in answers] == [200] * IN_FLIGHT
    assert sorted(int(a.json()["output"]["tag"]) for a in answers) == list(range(IN_FLIGHT))
    assert (health.status_code, health.json()["status"]) == (503, "draining")
    assert late.status_code == 503 and late.headers["Retry-After"] == "1", late.text
    assert "draining" in late.json()["error"]["message"]
    assert code == 0, output_of(proc)
    assert took < 10, f"exited {took:.1f} s after SIGTERM; grace is 10 s and the work took 2 s"
    assert events(log) == ["setup", "on_preempt", "shutdown"]


def test_work_longer_than_the_grace_is_answered_interrupted(tmp_path: Path) -> None:
    log = tmp_path / "log"
    env = {"LIFECYCLE_LOG": str(log), "GPUSERVE_GRACE_SECONDS": "1"}
    with drainable("serve", tmp_path, env) as (proc, client):
        base = str(client.base_url)
        with ThreadPoolExecutor(1) as pool:
            long = pool.submit(httpx.post, f"{base}/predict", json={"input": {"seconds": 8}}, timeout=30)
            wait_until(lambda: predicts_started(log) == 1, 20, "the predict running")
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            answer = long.result()
        code = proc.wait(timeout=20)
        took = time.monotonic() - signalled
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert answer.json()["error"]["type"] == "Interrupted" and "retry" in answer.json()["error"]["message"]
    assert code == 0
    assert took < 5, f"exited {took:.1f} s after SIGTERM with a 1 s grace"
    assert events(log) == ["setup", "on_preempt", "shutdown"]


class _Notice(http.server.BaseHTTPRequestHandler):
    announce = threading.Event()

    def do_PUT(self) -> None:  # IMDSv2 token
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"token")

    def do_GET(self) -> None:
        if self.announce.is_set():
            body = b'{"action": "terminate", "time": "2026-11-28T12:00:00Z"}'
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_spot_notice_starts_the_drain_before_any_signal(tmp_path: Path) -> None:
    log = tmp_path / "log"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Notice)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        notice = f"http://127.0.0.1:{server.server_address[1]}/latest/meta-data/spot/instance-action"
        env = {"LIFECYCLE_LOG": str(log), "GPUSERVE_SPOT_NOTICE_URL": notice}
        with drainable("serve", tmp_path, env) as (proc, client):
            assert client.get("/health").json()["status"] == "ready"
            _Notice.announce.set()
            code = proc.wait(timeout=20)
        assert code == 0
        assert events(log) == ["setup", "on_preempt", "shutdown"]
    finally:
        _Notice.announce.clear()
        server.shutdown()
        server.server_close()


def test_a_timed_out_predict_keeps_its_slot_and_then_fails_health(tmp_path: Path) -> None:
    """504 at the timeout, but the slot stays taken until predict returns; past the grace, /health says failed."""
    port = free_port()
    slow = f"{ROOT}/tests/models/slow.py:Slow"  # timeout=1, concurrency=2
    command = [sys.executable, "-m", "gpuserve.cli", "serve", slow, "--port", str(port)]
    with (
        started(command, ROOT, {"GPUSERVE_GRACE_SECONDS": "1"}) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
        ThreadPoolExecutor(3) as pool,
    ):
        wait_until(lambda: client.get("/health").status_code == 200, 60, "ready", proc)
        base = str(client.base_url)
        overdue = [
            pool.submit(httpx.post, f"{base}/predict", json={"input": {"seconds": 3.5}}, timeout=30) for _ in "ab"
        ]
        assert [f.result().status_code for f in overdue] == [504, 504]
        assert all(f.result().json()["error"]["type"] == "Timeout" for f in overdue)
        waiting = pool.submit(httpx.post, f"{base}/predict", json={"input": {"seconds": 0}}, timeout=30)
        time.sleep(1.4)  # past timeout + grace, with both predicts still sleeping
        health = client.get("/health")
        answer = waiting.result()
    assert (health.status_code, health.json()["status"]) == (503, "failed")
    assert "still running 1 s after its timeout" in health.json()["error"]
    assert answer.status_code == 200
    assert answer.json()["timing"]["queue_ms"] > 1500, "the third predict ran while both slots were still busy"


def test_streams_obey_the_timeout(tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "gpuserve.cli", "serve", f"{ROOT}/tests/models/slowstream.py:SlowStream"]
    with (
        started([*command, "--port", str(port)], ROOT) as proc,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        wait_until(lambda: client.get("/health").status_code == 200, 60, "ready", proc)
        collected = client.post("/predict", json={"input": {}})
        started_at = time.monotonic()
        with client.stream("POST", "/predict", json={"input": {}}, headers={"Accept": "text/event-stream"}) as events:
            text = "".join(events.iter_text())
        took = time.monotonic() - started_at
    assert collected.status_code == 504 and collected.json()["error"]["type"] == "Timeout"
    blocks = [b for b in text.strip().split("\n\n") if b]
    assert blocks[0].startswith("data: ") and 1 <= len(blocks) - 1 <= 4  # a few chunks, then the error
    assert blocks[-1].startswith("event: error") and '"type":"Timeout"' in blocks[-1]
    assert took < 2.5, f"the stream ran {took:.1f} s with timeout=1"


def test_the_exit_hook_drain_answers_the_web_endpoint_as_interrupted(tmp_path: Path) -> None:
    """Modal's exit hook calls ModelHost.stop: its web app (the same ASGI app) drains as the local server does."""
    import uvicorn

    from gpuserve.runtime import ModelHost
    from gpuserve.runtime.server import create_app

    host = ModelHost.from_ref(DRAINABLE)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(host), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client, ThreadPoolExecutor(2) as pool:
            wait_until(lambda: client.get("/health").status_code == 200, 30, "ready")
            quick = pool.submit(client.post, "/predict", json={"input": {"seconds": 0.5, "tag": "quick"}})
            slow = pool.submit(client.post, "/predict", json={"input": {"seconds": 6, "tag": "slow"}})
            time.sleep(0.3)
            stopped_at = time.monotonic()
            host.stop(grace=1.5)
            took = time.monotonic() - stopped_at
            late = client.post("/predict", json={"input": {"tag": "late"}})
            answers = quick.result(), slow.result()
    finally:
        server.should_exit = True
        thread.join(10)
    assert answers[0].status_code == 200 and answers[0].json()["output"] == {"tag": "quick"}
    assert answers[1].status_code == 503 and answers[1].json()["error"]["type"] == "Interrupted"
    assert late.status_code == 503 and late.headers["Retry-After"] == "1"
    assert took < 4 and host.state == "stopped"

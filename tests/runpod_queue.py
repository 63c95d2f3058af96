"""A stand-in for RunPod's job queue on 127.0.0.1, speaking the URLs the real worker loop calls.

GET  /job-take/{pod}?...            one job as JSON, or 204
GET  /job-take-batch/{pod}?...&batch_size=N   a list of up to N jobs, or 204
GET  /job-stop/{pod}?...            {"jobsToStop": [...]} once a test asked to stop them, else 204
POST /job-done/{pod}/{job}?...      the job's result (form-encoded JSON body)
POST /job-stream/{pod}/{job}?...    one streamed chunk
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class JobQueue:
    def __init__(self) -> None:
        self.pending: deque[dict[str, Any]] = deque()
        self.taken: list[str] = []
        self.done: dict[str, dict[str, Any]] = {}
        self.streamed: dict[str, list[Any]] = {}
        self.batch_sizes: list[int] = []
        self.to_stop: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def env(self, pod: str = "pod-1") -> dict[str, str]:
        base = f"http://127.0.0.1:{self.port}"
        return {
            "RUNPOD_POD_ID": pod,
            "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$RUNPOD_POD_ID?token=t",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?token=t",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?token=t",
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
        }

    def add(self, job_id: str, job_input: dict[str, Any]) -> None:
        with self.lock:
            self.pending.append({"id": job_id, "input": job_input})

    def stop(self, job_id: str) -> None:
        """Have the next stop poll tell the worker to stop this job, as RunPod does on cancel or timeout."""
        with self.lock:
            self.to_stop.append(job_id)

    def wait_done(self, job_ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if all(j in self.done for j in job_ids):
                    return
            time.sleep(0.05)
        raise AssertionError(
            f"jobs not done in {timeout}s: {[j for j in job_ids if j not in self.done]}; taken {self.taken}"
        )

    def wait_taken(self, job_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and job_id not in self.taken:
            time.sleep(0.02)
        assert job_id in self.taken, f"{job_id} was never taken"

    def __enter__(self) -> JobQueue:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        queue = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the worker reuses one session

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                kind = url.path.split("/")[1]
                if kind == "job-stop":
                    time.sleep(0.2)
                    with queue.lock:
                        stopping, queue.to_stop = queue.to_stop, []
                    self._send(200, {"jobsToStop": stopping}) if stopping else self._send(204)
                    return
                size = int(parse_qs(url.query).get("batch_size", ["1"])[0]) if kind == "job-take-batch" else 1
                with queue.lock:
                    queue.batch_sizes.append(size)
                    jobs = [queue.pending.popleft() for _ in range(min(size, len(queue.pending)))]
                    queue.taken += [j["id"] for j in jobs]
                if not jobs:
                    time.sleep(0.1)  # the real queue long-polls; do not let the worker spin
                    self._send(204)
                elif kind == "job-take-batch":
                    self._send(200, jobs)
                else:
                    self._send(200, jobs[0])

            def do_POST(self) -> None:
                url = urlparse(self.path)
                parts = url.path.split("/")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
                with queue.lock:
                    if parts[1] == "job-done":
                        queue.done[parts[3]] = body
                    elif parts[1] == "job-stream":
                        queue.streamed.setdefault(parts[3], []).append(body.get("output"))
                self._send(200, {})

        return Handler

"""A stand-in for RunPod's job queue on 127.0.0.1, speaking the URLs the real worker loop calls.

GET  /job-take/{pod}?...                      one job as JSON, or 204 (a long-poll: held until a job comes, or 1 s)
GET  /job-take-batch/{pod}?...&batch_size=N   a list of up to N jobs, or 204
POST /job-done/{pod}/{job}?...                the job's result
POST /job-stream/{pod}/{job}?...              one streamed chunk
Anything else (the worker's stop-job poll, heartbeats) answers 204.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

# How long a take waits for a job before 204, as RunPod's queue long-polls: a job added meanwhile is handed out at
# once (the worker sleeps between empty polls), and a stopping worker is held no longer than this.
POLL_SECONDS = 1.0


class JobQueue:
    def __init__(self) -> None:
        self.pending: deque[dict[str, Any]] = deque()
        self.takes = 0
        self.done: dict[str, Any] = {}
        self.streamed: dict[str, list[Any]] = {}
        self.changed = threading.Condition()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="gpuserve-runpod-queue", daemon=True)

    def env(self, pod: str = "gpuserve-test") -> dict[str, str]:
        """The variables that point RunPod's worker loop at this queue, with its GPU and system checks off."""
        base = f"http://127.0.0.1:{self.port}"
        return {
            "RUNPOD_POD_ID": pod,
            "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$RUNPOD_POD_ID?token=t",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?token=t",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?token=t",
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
        }

    def add(self, job_id: str, job_input: Any) -> None:
        with self.changed:
            self.pending.append({"id": job_id, "input": job_input})
            self.changed.notify_all()

    def wait_done(self, job_id: str, timeout: float) -> Any | None:
        """The body the worker posted for the job, or None when it did not come within timeout."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while job_id not in self.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.changed.wait(left)
            return self.done[job_id]

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
            disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK wait

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
                if kind not in ("job-take", "job-take-batch"):
                    self._send(204)
                    return
                size = int(parse_qs(url.query).get("batch_size", ["1"])[0]) if kind == "job-take-batch" else 1
                with queue.changed:
                    queue.takes += 1
                    queue.changed.notify_all()
                    queue.changed.wait_for(lambda: bool(queue.pending), timeout=POLL_SECONDS)
                    jobs = [queue.pending.popleft() for _ in range(min(size, len(queue.pending)))]
                if not jobs:
                    self._send(204)
                else:
                    self._send(200, jobs if kind == "job-take-batch" else jobs[0])

            def do_POST(self) -> None:
                parts = urlparse(self.path).path.split("/")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
                with queue.changed:
                    if parts[1] == "job-done":
                        queue.done[parts[3]] = body
                    elif parts[1] == "job-stream":
                        queue.streamed.setdefault(parts[3], []).append(body.get("output"))
                    queue.changed.notify_all()
                self._send(200, {})

        return Handler

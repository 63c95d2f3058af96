"""make demo: build examples/hello for every target, serve the built Docker directory, answer one request."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gpuserve.adapters import target_names
from gpuserve.build import build

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "hello" / "app.py"
OUT = ROOT / "build" / "demo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    for target in target_names():
        result = build(f"{APP}:Hello", target, OUT / target)
        print(f"built {target:<7} -> {result.directory.relative_to(ROOT)} ({len(result.files)} files)")
    port = free_port()
    # The built directory runs on its own copy of the runtime (python -m puts it first on sys.path).
    command = [sys.executable, "-m", "gpuserve.runtime", "app:Hello", "--host", "127.0.0.1", "--port", str(port)]
    print(f"serving build/demo/docker on 127.0.0.1:{port}: {' '.join(command[1:])}")
    server = subprocess.Popen(command, cwd=OUT / "docker")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    print("the server did not become ready", file=sys.stderr)
                    return 1
                time.sleep(0.1)
            request = {"input": {"name": "gpuserve", "language": "fr", "excited": True}}
            response = client.post("/predict", json=request)
            print(f"POST /predict {json.dumps(request)}\n-> {response.status_code} {response.text}")
            return 0 if response.status_code == 200 else 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())

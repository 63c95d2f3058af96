# Rendered by gpuserve 0.1.0 from app:ImageFilter (target: skypilot). Edit the model, then rebuild.
"""A batch run of image-filter: the model's own server on loopback, one POST /predict per input line.

`python batch.py INPUTS OUTPUTS [--app-dir DIR]`: INPUTS holds one JSON predict input per line; OUTPUTS gets one
line per input, in order: {"line": N, "status": HTTP status, "answer": the server's JSON answer}. Only the
standard library, so it runs on the image's Python as it is.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

ENTRY = 'app:ImageFilter'
APP_DIR = '/app'  # the image's WORKDIR
SETUP_TIMEOUT = 1800  # setup_timeout: weights and setup()
PREDICT_TIMEOUT = 120  # timeout, plus time queued
GRACE = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(url: str, body: bytes | None, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SETUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the server exited with {server.returncode} before it was ready")
        try:
            if call(f"{base}/health", None, 5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(1)
    sys.exit(f"the server was not ready within setup_timeout ({SETUP_TIMEOUT} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs")
    parser.add_argument("outputs")
    parser.add_argument("--app-dir", default=APP_DIR, help="where the model's code and gpuserve are")
    args = parser.parse_args()
    inputs, outputs = os.path.abspath(args.inputs), os.path.abspath(args.outputs)
    port = free_port()
    command = [sys.executable, "-m", "gpuserve.runtime", ENTRY, "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, cwd=args.app_dir)
    base = f"http://127.0.0.1:{port}"
    failed = 0
    try:
        wait_ready(base, server)
        with open(inputs, encoding="utf-8") as source, open(outputs, "w", encoding="utf-8") as sink:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                body = json.dumps({"input": json.loads(line)}).encode()
                status, answer = call(f"{base}/predict", body, PREDICT_TIMEOUT)
                failed += status != 200
                try:
                    parsed = json.loads(answer or b"null")
                except ValueError:  # a stream's events, or a proxy's page
                    parsed = answer.decode(errors="replace")
                sink.write(json.dumps({"line": number, "status": status, "answer": parsed}) + "\n")
    finally:
        server.send_signal(signal.SIGTERM)  # the server drains and runs shutdown()
        try:
            server.wait(GRACE + 10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    print(f"{outputs}: {failed} of the answers failed" if failed else f"{outputs}: every answer is 200")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

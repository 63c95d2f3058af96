"""Header limits on a real `gpuserve serve`, now on httptools: headers that trickle in are held to the limit too."""

from __future__ import annotations

import json
import socket
import sys
import time

import httpx

from tests.apps import HELLO, ROOT
from tests.proc import free_port, started, wait_until


def read_all(sock: socket.socket, seconds: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (or `seconds` pass)."""
    sock.settimeout(seconds)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def test_headers_trickling_past_the_limit_get_431_and_a_big_body_does_not() -> None:
    port = free_port()
    command = [sys.executable, "-m", "gpuserve.cli", "serve", HELLO.ref, "--port", str(port)]
    with started(command, ROOT) as proc, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        wait_until(lambda: client.get("/health").status_code == 200, 60, "ready", proc)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: ")
            try:
                for _ in range(40):  # 40 000 bytes of one header that never ends, in pieces: past 16 KiB
                    sock.sendall(b"a" * 1000)
                    time.sleep(0.005)
            except (BrokenPipeError, ConnectionResetError):  # refused before the last pieces
                pass
            trickled = read_all(sock)
        padding = "x" * 200_000  # one request whose body, not its headers, is large
        big = client.post(
            "/predict",
            content=json.dumps({"input": HELLO.good, "pad": padding}),
            headers={"content-type": "application/json"},
        )
        still = client.get("/health")
    assert trickled.startswith(b"HTTP/1.1 431"), trickled[:200]
    assert json.loads(trickled.split(b"\r\n\r\n", 1)[1])["error"]["type"] == "HeadersTooLarge"
    assert big.status_code == 200  # read whole, not taken for headers (the request's top level may hold more)
    assert still.status_code == 200

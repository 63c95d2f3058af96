"""A loopback HTTP server for URL weights: serves one body with Range support, records what it sent, and breaks
the first transfer on cue (drops the connection, or stalls until stopped) so resumption can be watched."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    """One GET as the server saw it: the Range header it carried and the body bytes sent back."""

    range: str | None
    status: int
    sent: int = 0


@dataclass
class Behaviour:
    body: bytes
    path: str = "/model.bin"  # any other path answers 404
    drop_after: int | None = None  # first transfer: send this many bytes, then close the connection
    stall_after: int | None = None  # first transfer: send this many bytes, then hang until the server stops
    chunk: int = 64 * 1024
    delay: float = 0.0  # seconds between chunks, so a transfer takes a while
    served: list[Served] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def full_gets(self) -> int:
        return sum(1 for s in self.served if s.range is None)


def _handler(behaviour: Behaviour) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = behaviour.body
            if self.path != behaviour.path:
                self.send_error(404)
                return
            asked = self.headers.get("Range")
            with behaviour.lock:
                first = not behaviour.served
                record = Served(range=asked, status=200)
                behaviour.served.append(record)
            start = int(asked.removeprefix("bytes=").split("-")[0]) if asked else 0
            if start >= len(body) and asked:
                record.status = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            record.status = 206 if asked else 200
            self.send_response(record.status)
            if asked:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            cut = behaviour.drop_after if first else None
            stall = behaviour.stall_after if first else None
            self._send(body[start:], record, cut=cut if cut is not None else stall)
            if stall is not None:
                behaviour.stopping.wait(30)

        def _send(self, data: bytes, record: Served, cut: int | None) -> None:
            end = len(data) if cut is None else cut
            for offset in range(0, end, behaviour.chunk):
                piece = data[offset : min(offset + behaviour.chunk, end)]
                try:
                    self.wfile.write(piece)
                    self.wfile.flush()
                except OSError:
                    return
                record.sent += len(piece)
                if behaviour.delay:
                    time.sleep(behaviour.delay)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serving(behaviour: Behaviour) -> Iterator[str]:
    """Serve on 127.0.0.1 at a free port; yields the base URL. Stops the server and releases stalls on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(behaviour))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        behaviour.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

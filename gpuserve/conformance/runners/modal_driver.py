"""Run by the modal virtualenv's python in a built modal directory: the class's `.local()` and its ASGI app.

    python modal_driver.py CLASS WEB_PORT LOCAL_PORT

http://127.0.0.1:WEB_PORT/    the class's @modal.asgi_app(), served by uvicorn (gpuserve's HTTP contract)
http://127.0.0.1:LOCAL_PORT/  POST an input as JSON: `predict.local(**input)` on the same instance, answered as
                              {"kind": "output", "value": ...} or {"kind": "invalid" | "failed", "message": ...}

Standard library, modal and uvicorn only: this file runs where gpuserve's CLI is not installed. Modal reports a
keyword the method does not take (or one it needs and did not get) as Python's own TypeError: that is Modal
refusing the input, so it counts as invalid, like gpuserve's InvalidInput.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BINDING = re.compile(r"unexpected keyword argument|missing \d+ required (keyword-only |positional )?argument")


def main() -> None:
    class_name, web_port, local_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.path.insert(0, ".")
    import modal_app
    import uvicorn

    instance = getattr(modal_app, class_name)()
    web = instance.web.local()  # the first local call runs the @modal.enter() hooks: the model's setup

    def local(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            return {"kind": "invalid", "message": f"keyword arguments are a JSON object, not {type(value).__name__}"}
        try:
            result = instance.predict.local(**value)
            if hasattr(result, "__next__"):
                result = list(result)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            refused = type(exc).__name__ == "InvalidInput" or (isinstance(exc, TypeError) and BINDING.search(str(exc)))
            return {"kind": "invalid" if refused else "failed", "message": message}
        return {"kind": "output", "value": result}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK wait

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send({"ready": True})

        def do_POST(self) -> None:
            self._send(local(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))))

    server = ThreadingHTTPServer(("127.0.0.1", local_port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="modal-local-calls", daemon=True).start()
    uvicorn.run(web, host="127.0.0.1", port=web_port, log_level="warning")


if __name__ == "__main__":
    main()

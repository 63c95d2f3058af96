"""Drive a built modal_app.py with the real modal SDK, offline (no token): run inside the modal virtualenv.

predict CLASS JSON   call predict.local(**input) twice, print both outputs as JSON lines
                     ({"$bytes": BASE64} in the input is passed as bytes, as a Modal caller passes a file)
invalid CLASS JSON   call predict.local(**input), print the error's type and message
serve CLASS PORT     serve the class's @modal.asgi_app() with uvicorn on 127.0.0.1:PORT
preempt CLASS JSON   call predict.local(**input) with Modal's simulated preemption (SIGINT) after 1 s
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

sys.path.insert(0, ".")
import modal_app  # noqa: E402


def as_json(value: Any) -> str:
    return json.dumps(list(value) if hasattr(value, "__next__") else value)


def main() -> int:
    command, class_name, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    instance = getattr(modal_app, class_name)()
    if command == "predict":
        kwargs = {
            k: base64.b64decode(v["$bytes"]) if isinstance(v, dict) and "$bytes" in v else v
            for k, v in json.loads(arg).items()
        }
        print(as_json(instance.predict.local(**kwargs)))
        print(as_json(instance.predict.local(**kwargs)))
        return 0
    if command == "invalid":
        try:
            print(as_json(instance.predict.local(**json.loads(arg))))
        except Exception as exc:
            print(f"{type(exc).__name__}: {exc}")
            return 3
        return 0
    if command == "serve":
        import uvicorn

        uvicorn.run(instance.web.local(), host="127.0.0.1", port=int(arg), log_level="warning")
        return 0
    if command == "preempt":
        from modal.exception import simulate_preemption

        simulate_preemption(1)
        try:
            print(as_json(instance.predict.local(**json.loads(arg))))
        except KeyboardInterrupt:
            print("preempted")
            raise
        return 0
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main())

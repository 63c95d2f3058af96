"""`python -m gpuserve.runtime APP --host H --port P`: the server a container starts (no CLI dependencies)."""

from __future__ import annotations

import argparse
import os

from .serve import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gpuserve.runtime", description=__doc__)
    parser.add_argument("app", help="file.py:Class or package.module:Class")
    parser.add_argument("--host", default=os.environ.get("GPUSERVE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--log-level", default=os.environ.get("GPUSERVE_LOG_LEVEL", "info"))
    args = parser.parse_args()
    serve(args.app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()

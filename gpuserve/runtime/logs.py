"""One log line per request, on every target: JSON for log collectors, plain text on a terminal.

GPUSERVE_LOG_FORMAT=json|text overrides the choice. Lines carry ids, timings and statuses, never headers,
so a bearer token cannot reach the logs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

log = logging.getLogger("gpuserve.requests")
# Probes and scrapes arrive every few seconds: logged at DEBUG so they do not drown the requests.
QUIET_PATHS = frozenset({"/health", "/metrics"})


class RequestFormatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", None) or {"message": record.getMessage()}
        if self.as_json:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            line = {"time": f"{stamp}.{int(record.msecs):03d}Z", "level": record.levelname.lower(), **fields}
            return json.dumps(line, separators=(",", ":"), default=str)
        return f"{record.levelname} gpuserve: " + " ".join(f"{k}={v}" for k, v in fields.items())


def configure(stream: Any = None) -> None:
    """Give gpuserve.requests its own handler, once: whatever the process's logging says, the line is written."""
    if any(getattr(h, "gpuserve_requests", False) for h in log.handlers):
        return
    stream = stream or sys.stderr
    chosen = os.environ.get("GPUSERVE_LOG_FORMAT", "").lower()
    as_json = chosen == "json" or (chosen != "text" and not stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RequestFormatter(as_json))
    handler.gpuserve_requests = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    # The process's level (`--log-level warning`) silences them too.
    wanted = logging.DEBUG if os.environ.get("GPUSERVE_LOG_PROBES") == "1" else logging.INFO
    log.setLevel(max(wanted, logging.getLogger().getEffectiveLevel()))
    log.propagate = False


def request(*, quiet: bool = False, **fields: Any) -> None:
    """Log one request's line (event, request_id, model, status, duration_ms, queue_ms, batch_size, ...)."""
    level = logging.DEBUG if quiet else logging.INFO
    if log.isEnabledFor(level):
        log.log(level, "request", extra={"fields": {"event": "request", **fields}})

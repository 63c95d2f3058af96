"""One log line per request, on every target: JSON for log collectors, plain text on a terminal.

GPUSERVE_LOG_FORMAT=json|text overrides the choice. Lines carry ids, timings and statuses, never headers,
so a bearer token cannot reach the logs.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import sys
import threading
import time
from typing import Any

import pydantic_core

log = logging.getLogger("gpuserve.requests")
# Probes and scrapes arrive every few seconds: logged at DEBUG so they do not drown the requests.
QUIET_PATHS = frozenset({"/health", "/metrics"})
_ours: logging.StreamHandler[Any] | None = None  # the handler configure() added


_MILLIS = [f".{millis:03d}Z" for millis in range(1000)]  # cheaper than formatting each line's
_LEVEL_NAMES = {logging.DEBUG: "DEBUG", logging.INFO: "INFO"}
_HEADS = {level: f'","level":"{name.lower()}","event":"request",' for level, name in _LEVEL_NAMES.items()}
_Line = tuple[int, float, dict[str, Any]]  # a deferred line: level, time.time() when it was logged, fields


class RequestFormatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json
        self._stamped = (-1, "")  # a second and its text, replaced whole: lines are made on more than one thread

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", None) or {"message": record.getMessage()}
        return self.line(record.levelname, record.created, fields)

    def line(self, level: str, created: float, fields: dict[str, Any], event: str | None = None) -> str:
        """One request's line; what format() writes, made without a LogRecord (request() calls it directly, with
        the event apart so that the fields are not copied into a new dict)."""
        if self.as_json:
            second = int(created)
            head = '{"time":"' + self._stamp(second) + _MILLIS[int((created - second) * 1000)] + '","level":"'
            head += level.lower() + ('",' if event is None else '","event":"' + event + '",')  # event: ours, plain
            body = pydantic_core.to_json(fields, fallback=str).decode()  # json.dumps' compact form
            return head + body[1:] if len(body) > 2 else head[:-1] + "}"  # no fields: no comma before the brace
        if event is not None:
            fields = {"event": event, **fields}
        return f"{level} gpuserve: " + " ".join(f"{k}={v}" for k, v in fields.items())

    def requests(self, lines: list[_Line], terminator: str) -> tuple[str, list[_Line]]:
        """The deferred request lines, as line() makes each, in one text; and those it cannot make (a value
        pydantic cannot write), for logging to report. Their pieces are joined once, not concatenated a line at a
        time: two fifths less of what a line costs besides to_json() (docs/benchmarks.md)."""
        parts: list[str] = []
        unmade: list[_Line] = []
        stamped, stamp = self._stamped
        for line in lines:
            level, created, fields = line
            try:
                if not self.as_json:
                    parts += (self.line(_LEVEL_NAMES[level], created, fields, "request"), terminator)
                    continue
                body = pydantic_core.to_json(fields, fallback=str).decode()
                head = _HEADS[level]
                second = int(created)
                if second != stamped:
                    stamped, stamp = second, self._stamp(second)
            except Exception:
                unmade.append(line)
                continue
            parts += ('{"time":"', stamp, _MILLIS[int((created - second) * 1000)])
            parts += (head, body[1:], terminator) if len(body) > 2 else (head[:-1], "}", terminator)
        return "".join(parts), unmade

    def _stamp(self, second: int) -> str:
        """The second's text: one strftime a second, not one a line."""
        stamped, stamp = self._stamped
        if second != stamped:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._stamped = (second, stamp)
        return stamp


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
    global _ours
    _ours = handler
    # The process's level (`--log-level warning`) silences them too.
    wanted = logging.DEBUG if os.environ.get("GPUSERVE_LOG_PROBES") == "1" else logging.INFO
    log.setLevel(max(wanted, logging.getLogger().getEffectiveLevel()))
    log.propagate = False


def ms(seconds: float) -> float:
    """A line's milliseconds, to the microsecond: round(seconds * 1000, 3) costs twice as many instructions (it
    rounds through a decimal string). For a finite duration (a perf_counter() difference)."""
    return round(seconds * 1e6) / 1e3


def request(fields: dict[str, Any], *, quiet: bool = False, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Log one request's line: its fields (request_id, model, status, duration_ms, queue_ms, batch_size, ...), in a
    dict the caller makes for it (a dict literal costs fewer instructions than keyword arguments) and leaves alone.

    Where gpuserve's own handler is the logger's only one, the line is written to its stream directly: the same
    line, without a LogRecord and the logger's dispatch, which cost more than the rest of a no-op request's logging.
    loop (the loop running this call, which goes on running): the line is stamped now, then made and written with
    the others of up to FLUSH_SECONDS later, in one write, off the request's path (RunPod sends a job's answer after
    its handler returns; a write and a timer per job cost it about 15 µs of a no-op job's 40 in-process:
    docs/benchmarks.md). Making the line waits too: so the fields' values must not be changed after the call.
    """
    level = logging.DEBUG if quiet else logging.INFO
    if not log.isEnabledFor(level):
        return
    handler = _ours
    if handler is not None and level >= handler.level and log.handlers == [handler] and not log.filters:
        formatter = handler.formatter
        if isinstance(formatter, RequestFormatter) and not handler.filters:
            if loop is not None:
                _later(loop, handler, (level, time.time(), fields))
                return
            if _write(
                handler, formatter.line(_LEVEL_NAMES[level], time.time(), fields, "request") + handler.terminator
            ):
                return
    log.log(level, "request", extra={"fields": {"event": "request", **fields}})


def _write(handler: logging.StreamHandler[Any], text: str) -> bool:
    """Write to the handler's stream under its lock; False where the stream is closed or broken."""
    handler.acquire()
    try:
        stream = handler.stream
        stream.write(text)
        if hasattr(stream, "flush"):  # as StreamHandler.flush() asks
            stream.flush()
        return True
    except Exception:
        return False
    finally:
        handler.release()


# Deferred lines, per loop (a loop's thread adds, its flush or the exit takes: under the lock).
_deferred: dict[asyncio.AbstractEventLoop, tuple[logging.StreamHandler[Any], list[_Line]]] = {}
_deferred_lock = threading.Lock()
FLUSH_SECONDS = 0.05  # how long a deferred line waits at most: 75 no-op jobs a write on RunPod's local API
FLUSH_LINES = 128  # or until this many wait: the loop then makes them at its next turn, a short pause


def _later(loop: asyncio.AbstractEventLoop, handler: logging.StreamHandler[Any], line: _Line) -> None:
    """Hold the line for the loop's next flush, a timer: it runs after what this turn queued, so an answer that a
    client library sends from a task of its own (RunPod's aiohttp) goes out first."""
    with _deferred_lock:
        waiting = _deferred.get(loop)
        if waiting is not None and waiting[0] is handler:
            waiting[1].append(line)
            if len(waiting[1]) == FLUSH_LINES:
                loop.call_later(0, _flush, loop)  # the pending timer then finds the next lines, or none
            return
        _deferred[loop] = (handler, [line])
    if waiting is not None:  # configured anew since: what the old handler holds goes out now
        _write_or_log(*waiting)
        return  # the flush already scheduled takes the new line
    loop.call_later(FLUSH_SECONDS, _flush, loop)


def _flush(loop: asyncio.AbstractEventLoop) -> None:
    """Write the lines the loop deferred, in one write."""
    with _deferred_lock:
        waiting = _deferred.pop(loop, None)
    if waiting is not None:
        _write_or_log(*waiting)


def _write_or_log(handler: logging.StreamHandler[Any], lines: list[_Line]) -> None:
    """The lines made by the handler's formatter, in one write; logging's own handling, each record with the time
    it was logged, for a line that cannot be made, all of them where the stream is broken or the formatter was
    replaced since."""
    formatter = handler.formatter
    if isinstance(formatter, RequestFormatter):
        text, unmade = formatter.requests(lines, handler.terminator)
        if not text or _write(handler, text):
            lines = unmade
    for level, created, fields in lines:
        extra = {"fields": {"event": "request", **fields}}
        record = log.makeRecord(log.name, level, __file__, 0, "request", (), None, extra=extra)
        record.created, record.msecs = created, (created - int(created)) * 1000
        log.handle(record)


@atexit.register
def flush_all() -> None:
    """Write every deferred line now: a worker's loop has ended (at its shutdown, and at exit), or the process
    is about to end without running atexit (os._exit)."""
    with _deferred_lock:
        loops = list(_deferred)
    for loop in loops:
        _flush(loop)

"""Stopping a sync predict from outside its thread, the way coglet cancels one: an exception raised in that thread.

Where a platform runs a sync predict on a thread it owns (cog's prediction thread, RunPod's event loop) there is
no thread of gpuserve's to abandon at the drain's end, so the drain raises DrainStop in the predict's thread
(PyThreadState_SetAsyncExc). It arrives at the predict's next Python line: a predict blocked in one long call into
C (`time.sleep`, a socket read) stops once that call returns.
"""

from __future__ import annotations

import threading
import time


class DrainStop(BaseException):
    """Raised in a sync predict's thread at the grace's end; a BaseException, as coglet's own cancel is, so the
    model's `except Exception` does not swallow it."""


class RunningPredicts:
    """The threads inside a sync predict, each with when it started.

    A thread joins before its predict and leaves after it, both under the lock that stop() raises under: an
    exception is never raised in a thread that has left. It may land in the leaving itself, so whoever catches
    DrainStop calls leave() again (it is idempotent).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}

    def join(self) -> None:
        with self._lock:
            self._started[threading.get_ident()] = time.monotonic()

    def leave(self) -> None:
        with self._lock:
            self._started.pop(threading.get_ident(), None)

    def longest(self) -> float | None:
        """Seconds the longest-running predict has run so far; None when none runs."""
        with self._lock:
            first = min(self._started.values(), default=None)
        return None if first is None else time.monotonic() - first

    def stop(self) -> int:
        """Raise DrainStop in every thread inside a predict now; how many there were."""
        import ctypes  # here, at the drain's end: 5 ms of every worker's start otherwise

        with self._lock:
            for ident in self._started:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(DrainStop))
            return len(self._started)

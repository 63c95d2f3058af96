"""Stopping a sync predict from outside its thread, the way coglet cancels one: an exception raised in that thread.

Where a platform runs a sync predict on a thread it owns (cog's prediction thread, RunPod's event loop) there is
no thread of gpuserve's to abandon at the drain's end, so the drain raises DrainStop in the predict's thread
(PyThreadState_SetAsyncExc). It arrives at the predict's next Python line: a predict blocked in one long call into
C (`time.sleep`, a socket read) stops once that call returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DrainStop(BaseException):
    """Raised in a sync predict's thread at the grace's end; a BaseException, as coglet's own cancel is, so the
    model's `except Exception` does not swallow it."""


class RunningPredicts:
    """The threads inside a sync predict, each with when it started.

    A thread joins before its predict and leaves after it, both under the lock that stop() raises under: an
    exception is never raised in a thread that has left. It may land in the leaving itself, so run() leaves again
    (leave() is idempotent) and keeps the output of a predict that had returned.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}

    def run(self, predict: Callable[[], T], check: Callable[[], None]) -> T:
        """predict() in this thread, where stop() reaches it; check() first, once joined (the drain may be over).
        Raises DrainStop when stopped before predict() returned."""
        done: list[T] = []
        try:
            try:  # joined inside the try: the finally leaves, whatever lands in between
                self.join()
                check()
                done.append(predict())
            finally:
                self.leave()
        except BaseException as exc:  # DrainStop, or the platform's own cancel, may land as it leaves
            self.leave()
            if not (done and isinstance(exc, DrainStop)):
                raise
        return done[0]

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

    def stop(self) -> None:
        """Raise DrainStop in every thread inside a predict now."""
        import ctypes  # here, at the drain's end: 5 ms of every worker's start otherwise

        with self._lock:
            for ident in self._started:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(DrainStop))

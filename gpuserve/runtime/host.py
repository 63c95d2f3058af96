"""ModelHost: one model instance with its lifecycle, input validation and output encoding.

Every target calls the same host, so setup runs once, inputs are checked the same way,
outputs encode to the same JSON and shutdown runs once, wherever the model is served.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..decorator import spec_of
from ..files import CONTEXT_KEY, OUTPUT, TRUSTED_PATHS, File, holds_file
from ..loader import load_app
from ..signature import PredictSignature
from ..spec import ModelSpec
from .cache import configure_cache
from .files import FetchPolicy, discard, fetch_inputs, file_fields
from .inputs import Invalid, validate_strict
from .inputs import InvalidInput as InvalidInput  # its home was here; targets import it from the host
from .weights import cache_dir_from_env, fetch_all

if TYPE_CHECKING:
    from .batcher import Batcher

log = logging.getLogger("gpuserve")
# Seconds stop() leaves requests answered as interrupted to reach their clients.
ANSWER_SECONDS = 2.0
# Seconds an idle predict thread waits for more work before it ends.
IDLE_THREAD_SECONDS = 30.0
# The validation context for inputs a platform fetched itself (cog's Path): only read, so one serves every call.
_TRUSTED_FILES = {CONTEXT_KEY: TRUSTED_PATHS}

State = Literal["starting", "ready", "failed", "draining", "stopped"]


class PredictFailed(RuntimeError):
    """predict raised; carries the original exception's type name and message."""

    def __init__(self, exc: BaseException) -> None:
        self.type = type(exc).__name__
        self.message = str(exc)
        super().__init__(f"{self.type}: {self.message}")


def validation_errors(exc: ValidationError, prefix: tuple[str, ...] = ("input",)) -> list[dict[str, Any]]:
    return [
        {"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


class ModelHost:
    """Holds one instance of a decorated class and runs it."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.spec: ModelSpec
        self.signature: PredictSignature
        self.spec, self.signature = spec_of(cls)
        self.state: State = "starting"
        self.error: str | None = None
        self.setup_seconds: float | None = None
        self.phases: dict[str, dict[str, float]] = {}
        self._instance: Any = None
        self._setup_lock = threading.Lock()
        self._shutdown_lock = threading.Lock()
        self._shut_down = False
        self._output = TypeAdapter(self.signature.output_type)
        # File inputs are fetched before predict and removed after; File outputs are delivered (data: URI or upload).
        self._file_inputs = bool(file_fields(self.signature.input_model))
        self._file_outputs = holds_file(self.signature.output_type)
        # A str, int or bool output already is its JSON form: encode() returns it as it is (bool is not an int here).
        self._plain_output = self.signature.output_type if self.signature.output_type in (str, int, bool) else None
        self._fetch_policy: FetchPolicy | None = None
        self._destination: Any = None
        # Sync predicts run on daemon threads of their own, counted: a predict answered as interrupted may still
        # be inside the model's code when the process exits, and must not hold the exit (a pool's threads would).
        self._busy = 0
        self._in_flight: list[Callable[[], int]] = []
        self._interrupters: list[Callable[[], None]] = []
        self._busy_lock = threading.Lock()
        # Predict threads are kept for the next predict (a new thread each time cost more than a no-op predict):
        # `_idle` of them wait on `_work`, daemon threads still, so a stuck predict never holds the exit.
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = 0
        # A batched model's requests meet in one Batcher, which calls predict once per group.
        self.batcher: Batcher | None = None
        if self.signature.batched:
            from .batcher import Batcher

            self.batcher = Batcher(self, self._bound)

    @classmethod
    def from_ref(cls, app_ref: str) -> ModelHost:
        """A host for the model named by "module:Class" or "file.py:Class"."""
        return cls(load_app(app_ref).cls)

    # lifecycle -------------------------------------------------------------------------
    def shutdown_at_exit(self) -> None:
        """Run shutdown() when the process exits, whatever ends it (a preemption's KeyboardInterrupt included)."""
        atexit.register(self.shutdown)

    def setup(self) -> None:
        """Create the instance and run its setup() once; later calls return at once."""
        with self._setup_lock:
            if self._instance is not None or self.state == "failed":
                if self.state == "failed":
                    raise RuntimeError(f"setup failed: {self.error}")
                return
            configure_cache()
            started = time.perf_counter()
            try:
                self._check_file_settings()
                fetched = fetch_all(self.spec.weights, cache_dir=cache_dir_from_env(), code_dir=self.code_dir)
                loading = time.perf_counter()
                instance = self.cls()
                hook = getattr(instance, "setup", None)
                if hook is not None:
                    result = hook()
                    if asyncio.iscoroutine(result):
                        asyncio.run(result)
            except BaseException as exc:
                self.state = "failed"
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("gpuserve: setup of %s failed", self.cls.__name__)
                raise
            self._instance = instance
            ready = time.perf_counter()
            self.setup_seconds = ready - started
            self.phases = {
                "fetch": {"seconds": round(loading - started, 3), "bytes": sum(f.bytes for f in fetched)},
                "load": {"seconds": round(ready - loading, 3)},
                "ready": {"seconds": round(ready - started, 3)},
            }
            if self.state == "starting":
                self.state = "ready"
            log.info("gpuserve: %s", json.dumps({"event": "started", "model": self.spec.name, **self.phases}))

    def _check_file_settings(self) -> None:
        """Read the file settings from the environment at start, so a wrong one fails the start, not a request."""
        if self._file_inputs:
            self._fetch_policy = FetchPolicy.from_env()
        if self._file_outputs:
            from .outputs import destination_from_env

            self._destination = destination_from_env(os.environ)  # DestinationError lists every problem

    @property
    def code_dir(self) -> Path:
        """The directory of the model's module: where Local weights are found."""
        module = sys.modules.get(self.cls.__module__)
        file = getattr(module, "__file__", None)
        return Path(file).resolve().parent if file else Path.cwd()

    def shutdown(self) -> None:
        """Run the model's shutdown() once, whatever asked for it (signal, scale-down, exit)."""
        with self._shutdown_lock:
            if self._shut_down:
                return
            self._shut_down = True
            self.state = "stopped"
            self._call_hook("shutdown")

    def drain(self) -> None:
        """Stop taking new work (a signal arrived); work in flight finishes."""
        if self.state in ("starting", "ready"):
            self.state = "draining"

    def preempted(self) -> None:
        """Call the model's optional on_preempt() (checkpoint now: the container is about to go)."""
        self._call_hook("on_preempt")

    def _call_hook(self, name: str) -> None:
        """Run the model's optional hook (sync or async); what it raises is logged, never raised: we are stopping."""
        hook = getattr(self._instance, name, None) if self._instance is not None else None
        if hook is None:
            return
        try:
            result = hook()
            if asyncio.iscoroutine(result):
                asyncio.run(result)
        except Exception:
            log.exception("gpuserve: %s of %s raised", name, self.cls.__name__)

    def stop(self, grace: float) -> None:
        """Where the platform owns the signal (Modal's exit hook): stop, checkpoint, wait, interrupt, shut down."""
        self.drain()
        self.preempted()
        if not self.wait_idle(grace):
            log.warning("gpuserve: work still running after %g s: answering it as interrupted", grace)
            for interrupt in self._interrupters:
                interrupt()
            self.wait_idle(ANSWER_SECONDS)
        self.shutdown()

    def track(self, in_flight: Callable[[], int], interrupt: Callable[[], None]) -> None:
        """Let a server's requests count as work in flight for stop(), and be answered as interrupted by it."""
        self._in_flight.append(in_flight)
        self._interrupters.append(interrupt)

    def mark_stuck(self, message: str) -> None:
        """A predict outlived its timeout by the grace period: say so on /health, so the platform replaces us."""
        log.error("gpuserve: %s", message)
        self.state = "failed"
        self.error = message

    @property
    def busy_threads(self) -> int:
        """Sync predicts running on a thread right now (including ones whose callers gave up on them)."""
        return self._busy

    def wait_idle(self, seconds: float) -> bool:
        """Block until no predict thread runs, for at most `seconds`. True when idle."""
        deadline = time.monotonic() + seconds
        while self._working() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._working()

    def _working(self) -> int:
        return self._busy + sum(count() for count in self._in_flight)

    def spawn(self, fn: Any, *args: Any) -> Future[Any]:
        """Run fn(*args) on a daemon thread (an idle one, else a new one); its result or exception arrives on
        the future."""
        future: Future[Any] = Future()
        with self._busy_lock:
            self._busy += 1
            reuse = self._idle > 0
            if reuse:
                self._idle -= 1

        def run() -> None:
            outcome: tuple[bool, Any] | None = None
            try:
                if future.set_running_or_notify_cancel():  # else its caller gave up before it started
                    try:
                        outcome = (True, fn(*args))
                    except BaseException as exc:
                        outcome = (False, exc)
            finally:
                with self._busy_lock:  # idle before the caller hears back, so its next predict finds this thread
                    self._busy -= 1
                    self._idle += 1
                if outcome is not None:  # a running future cannot be cancelled any more
                    (future.set_result if outcome[0] else future.set_exception)(outcome[1])

        self._work.put(run)
        if not reuse:
            threading.Thread(target=self._predict_thread, name="gpuserve-predict", daemon=True).start()
        return future

    def _predict_thread(self) -> None:
        """Run work as it comes; end after IDLE_THREAD_SECONDS without any, unless spawn() just counted on us."""
        while True:
            try:
                run = self._work.get(timeout=IDLE_THREAD_SECONDS)
            except queue.Empty:
                with self._busy_lock:
                    if self._idle > 0:
                        self._idle -= 1
                        return
                continue
            run()  # counts this thread idle again as it ends

    async def in_thread(self, fn: Any, *args: Any) -> Any:
        """Run fn on a predict thread without blocking the event loop."""
        return await asyncio.wrap_future(self.spawn(fn, *args))

    @property
    def ready(self) -> bool:
        return self.state == "ready" and self._instance is not None

    # inputs and outputs ----------------------------------------------------------------
    def validate(self, raw: Mapping[str, Any] | BaseModel | None, *, platform_files: bool = False) -> BaseModel:
        """Check raw input against the model's input schema. Raises InvalidInput naming each field.

        platform_files: the platform fetched file inputs itself (cog's Path): its local paths are the files.
        Otherwise a path is never an input; files come as URLs, data: URIs, base64 or bytes.
        """
        model = self.signature.input_model
        if type(raw) is not dict:  # a platform's decoded JSON is one, and skips these checks (ABCs: each costs)
            if isinstance(raw, model):
                return raw
            if raw is None:
                raw = {}
            if isinstance(raw, BaseModel):
                raw = raw.model_dump()
            if not isinstance(raw, Mapping):
                raise InvalidInput(
                    [
                        {
                            "loc": ["input"],
                            "msg": f"Input should be a JSON object, not {type(raw).__name__}",
                            "type": "model_type",
                        }
                    ]
                )
            raw = dict(raw)
        try:  # strictly, as the published schema reads: no `false` for a number, no infinity (raw is not changed)
            return validate_strict(model, raw, prefix=("input",), context=_TRUSTED_FILES if platform_files else None)
        except Invalid as exc:
            raise InvalidInput(exc.errors) from None

    def encode(self, output: Any) -> Any:
        """The JSON-ready form of one output (or one streamed chunk), checked against its annotation."""
        if type(output) is self._plain_output:
            return output
        if self._file_outputs:
            return self._encode_files(output)
        try:
            return self._output.dump_python(self._output.validate_python(output), mode="json")
        except ValidationError as exc:
            raise PredictFailed(
                TypeError(f"predict returned a value that does not match its annotation: {exc}")
            ) from None

    def _encode_files(self, output: Any) -> Any:
        """encode() for outputs holding files: each is delivered, and removed when gpuserve made it."""
        failures: list[Exception] = []

        def deliver(file: File) -> str:
            try:  # setup() chose the destination (predict runs only after it)
                return str(self._destination.deliver(file, file.content_type))
            except Exception as exc:
                failures.append(exc)
                raise
            finally:
                if not getattr(self._destination, "keeps_files", False):
                    discard([file])

        try:
            checked = self._output.validate_python(output, context={CONTEXT_KEY: OUTPUT})
            return self._output.dump_python(checked, mode="json", context={CONTEXT_KEY: deliver})
        except ValidationError as exc:
            raise PredictFailed(
                TypeError(f"predict returned a value that does not match its annotation: {exc}")
            ) from None
        except Exception as exc:
            if failures:
                raise PredictFailed(failures[0]) from failures[0]
            raise PredictFailed(exc) from exc

    def deliver_files_with(self, destination: Any) -> None:
        """Deliver file outputs through `destination` (its deliver(path, content_type) -> str) instead of the
        environment's; one with `keeps_files = True` owns removing them (cog reads them after run returns)."""
        self._destination = destination

    def fetch_files(self, value: BaseModel) -> list[File]:
        """Fetch the value's file inputs (blocking). Returns what to discard once answered; raises FileRefused."""
        if not self._file_inputs:
            return []
        if self._fetch_policy is None:
            self._fetch_policy = FetchPolicy.from_env()
        return fetch_inputs(value, self._fetch_policy)

    # calling predict -------------------------------------------------------------------
    def _bound(self) -> Any:
        if self._instance is None:
            self.setup()
        return self._instance.predict

    def predict(self, raw: Mapping[str, Any] | BaseModel | None) -> Any:
        """Validate, call, encode: the blocking form, for runners that call from a worker thread."""
        value = self.validate(raw)
        if self.batcher is not None:
            return self.batcher.predict(value).result()
        if self.signature.streaming:
            return list(self.stream(value))
        args, kwargs = self.signature.call_args(value)
        fn = self._bound()
        fetched = self.fetch_files(value)
        try:
            try:
                result = asyncio.run(fn(*args, **kwargs)) if self.signature.is_async else fn(*args, **kwargs)
            except Exception as exc:
                raise PredictFailed(exc) from exc
            return self.encode(result)
        finally:
            discard(fetched)

    def stream(self, raw: Mapping[str, Any] | BaseModel | None) -> Iterator[Any]:
        """Yield encoded chunks from a streaming predict (blocking form)."""
        value = self.validate(raw)
        args, kwargs = self.signature.call_args(value)
        fn = self._bound()
        fetched = self.fetch_files(value)
        try:
            chunks = fn(*args, **kwargs)
            for chunk in _drain_async(chunks) if self.signature.is_async else chunks:
                yield self.encode(chunk)
        except PredictFailed:
            raise
        except Exception as exc:
            raise PredictFailed(exc) from exc
        finally:
            discard(fetched)

    @property
    def bare(self) -> bool:
        """A predict with no files in or out, not batched, not a stream: for it, call() then encode() is all that
        predict() (a sync one) and apredict() (an async one) do."""
        return (
            self.batcher is None and not self.signature.streaming and not self._file_inputs and not self._file_outputs
        )

    @property
    def bare_async(self) -> bool:
        """bare, and async: the caller awaits call() in its own task."""
        return self.signature.is_async and self.bare

    def call(self, value: BaseModel) -> Any:
        """The model's own predict called on a validated value, for a bare model: a sync one's output, an async
        one's coroutine to await in the caller's task, without the frames of predict() or apredict() around it
        (its exceptions are the model's own)."""
        args, kwargs = self.signature.call_args(value)
        return self._bound()(*args, **kwargs)

    async def apredict(self, value: BaseModel) -> Any:
        """The event-loop form: async predicts are awaited, sync ones run in a worker thread."""
        if self.batcher is not None:
            return (await self.batcher.apredict(value)).result()
        args, kwargs = self.signature.call_args(value)
        fn = self._bound()
        fetched = await asyncio.to_thread(self.fetch_files, value) if self._file_inputs else []
        try:
            try:
                if self.signature.is_async:
                    result = await fn(*args, **kwargs)
                else:
                    result = await self.in_thread(functools.partial(fn, *args, **kwargs))
            except Exception as exc:
                raise PredictFailed(exc) from exc
            if self._file_outputs:  # delivering may upload: off the event loop
                return await asyncio.to_thread(self.encode, result)
            return self.encode(result)
        finally:
            discard(fetched)

    async def astream(self, value: BaseModel) -> AsyncGenerator[Any, None]:
        """Encoded chunks without blocking the event loop: sync generators advance in a thread."""
        args, kwargs = self.signature.call_args(value)
        fn = self._bound()
        fetched = await asyncio.to_thread(self.fetch_files, value) if self._file_inputs else []
        encode = _in_thread(self.encode) if self._file_outputs else _encoded(self.encode)
        iterator: Any = None
        try:
            if self.signature.is_async:
                async for chunk in fn(*args, **kwargs):
                    yield await encode(chunk)
                return
            iterator = iter(fn(*args, **kwargs))
            done = object()
            while True:
                chunk = await self.in_thread(next, iterator, done)
                if chunk is done:
                    return
                yield await encode(chunk)
        except PredictFailed:
            raise
        except Exception as exc:
            raise PredictFailed(exc) from exc
        finally:
            if hasattr(iterator, "close"):  # the client left: let the model's generator stop now (its finally runs)
                self.spawn(_close_quietly, iterator)
            discard(fetched)


def _close_quietly(generator: Any) -> None:
    """Close a sync generator; one still running a chunk on another thread cannot be, and finishes by itself."""
    try:
        generator.close()
    except Exception:
        log.debug("gpuserve: the model's generator did not close", exc_info=True)


def _encoded(encode: Callable[[Any], Any]) -> Callable[[Any], Awaitable[Any]]:
    """encode() as a coroutine function, for code that awaits either form."""

    async def encoded(chunk: Any) -> Any:
        return encode(chunk)

    return encoded


def _in_thread(encode: Callable[[Any], Any]) -> Callable[[Any], Awaitable[Any]]:
    """encode() off the event loop (delivering a file may upload it)."""

    async def encoded(chunk: Any) -> Any:
        return await asyncio.to_thread(encode, chunk)

    return encoded


def _drain_async(agen: Any) -> Iterator[Any]:
    """Iterate an async generator from sync code, one chunk at a time, on a private loop."""
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.close()

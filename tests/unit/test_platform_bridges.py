"""RunPod's handler and cog's bridge run predict in the platform's own task or thread; the drain and a platform's
stop still reach it there (the platforms themselves: tests/integration/test_platform_drain.py)."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import gpuserve
from gpuserve.runtime import ModelHost
from gpuserve.runtime.cog_runner import CogBridge, IdleLoop, Interrupted
from gpuserve.runtime.inputs import Invalid, validate_strict
from gpuserve.runtime.runpod_worker import RunpodWorker
from gpuserve.runtime.stops import RunningPredicts


@gpuserve.model(name="waits", grace=5)
class Waits:
    ended: list[str] = []

    async def predict(self, seconds: float = 0.0, tag: str = "x") -> str:
        try:
            await asyncio.sleep(seconds)
        finally:
            self.ended.append(tag)
        return tag


class _Sleeps:
    ended: list[str] = []
    threads: list[int] = []

    def predict(self, seconds: float = 0.0, tag: str = "x") -> str:
        self.threads.append(threading.get_ident())
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:  # Python lines, where an interruption can land
                time.sleep(0.01)
        finally:
            self.ended.append(tag)
        return tag


@gpuserve.model(name="waits-sync", grace=5)
class WaitsSync(_Sleeps):
    """A sync predict that runs alone: on RunPod's loop."""


@gpuserve.model(name="waits-sync-beside", grace=5, concurrency=2)
class WaitsSyncBeside(_Sleeps):
    """A sync predict that runs beside others: on a predict thread."""


def runpod(cls: type) -> RunpodWorker:
    worker = RunpodWorker(ModelHost(cls))
    worker.setup()
    return worker


def test_runpod_async_job_answers_in_its_own_task() -> None:
    worker = runpod(Waits)

    async def main() -> tuple[Any, Any]:
        return await worker.handle({"id": "a", "input": {"tag": "a"}}), await worker.handle({"id": "b", "input": {}})

    assert asyncio.run(main()) == ("a", "x")


def test_runpod_invalid_input_is_an_error_naming_the_field() -> None:
    answer = asyncio.run(runpod(Waits).handle({"id": "a", "input": {"seconds": "soon"}}))
    assert answer["error"].startswith("invalid input: input.seconds:")


@pytest.mark.parametrize("cls", [Waits, WaitsSyncBeside], ids=["async", "sync-beside-others"])
def test_runpod_job_past_the_grace_answers_interrupted_retry_it(cls: Any) -> None:
    worker = runpod(cls)

    async def main() -> Any:
        job = asyncio.ensure_future(worker.handle({"id": "long", "input": {"seconds": 3}}))
        await asyncio.sleep(0.2)
        worker._interrupt()  # what the drain does once the grace ran out
        return await asyncio.wait_for(job, 2)

    answer = asyncio.run(main())
    assert answer["error"].startswith("Interrupted: the worker is shutting down") and "retry it" in answer["error"]


def test_runpod_stopped_async_job_is_cancelled_and_its_predict_has_ended() -> None:
    Waits.ended.clear()
    worker = runpod(Waits)

    async def main() -> None:
        job = asyncio.ensure_future(worker.handle({"id": "long", "input": {"seconds": 3, "tag": "long"}}))
        await asyncio.sleep(0.2)
        job.cancel()  # RunPod's stop_job
        with pytest.raises(asyncio.CancelledError):
            await job
        assert Waits.ended == ["long"]

    asyncio.run(main())


def test_runpod_stopped_sync_job_beside_others_holds_until_its_predict_returns() -> None:
    _Sleeps.ended.clear()
    worker = runpod(WaitsSyncBeside)

    async def main() -> float:
        job = asyncio.ensure_future(worker.handle({"id": "long", "input": {"seconds": 0.6, "tag": "long"}}))
        await asyncio.sleep(0.2)
        stopped = time.monotonic()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        assert _Sleeps.ended == ["long"]
        return time.monotonic() - stopped

    assert asyncio.run(main()) >= 0.3


@pytest.mark.parametrize(("cls", "on_the_loop"), [(WaitsSync, True), (WaitsSyncBeside, False)], ids=["alone", "beside"])
def test_runpod_sync_predict_runs_on_the_loops_thread_only_when_alone(cls: Any, on_the_loop: bool) -> None:
    _Sleeps.threads.clear()
    assert asyncio.run(runpod(cls).handle({"id": "a", "input": {"tag": "a"}})) == "a"
    assert (_Sleeps.threads == [threading.get_ident()]) is on_the_loop


@gpuserve.model(name="runs-a-loop")
class RunsALoop:
    def predict(self, text: str = "x", nested_run: bool = False) -> str:
        """What works on a predict thread must on RunPod's loop too: asyncio.run(), and a library's own loop."""
        if nested_run:
            return asyncio.run(asyncio.sleep(0, text))
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:  # no current loop in this thread: make one
            loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(asyncio.sleep(0, text))
        finally:
            loop.close()


def test_runpod_sync_predict_on_the_loop_can_run_an_event_loop_of_its_own() -> None:
    worker = runpod(RunsALoop)
    jobs = [{"text": "own"}, {"text": "nested", "nested_run": True}, {"text": "own again"}]

    async def main() -> tuple[list[Any], bool]:
        answers = [await worker.handle({"id": str(n), "input": job}) for n, job in enumerate(jobs)]
        await asyncio.sleep(0)  # RunPod's loop still runs, and is this thread's loop again
        return answers, asyncio.get_running_loop() is asyncio.get_event_loop_policy().get_event_loop()

    assert asyncio.run(main()) == (["own", "nested", "own again"], True)


def test_runpod_sync_predict_on_the_loop_is_stopped_at_the_drains_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSERVE_GRACE_SECONDS", "0.3")
    _Sleeps.ended.clear()
    worker = runpod(WaitsSync)
    threading.Timer(0.1, worker.begin_drain, ("a test",)).start()  # RunPod's SIGTERM, while the loop is busy
    started = time.monotonic()
    answer = asyncio.run(worker.handle({"id": "long", "input": {"seconds": 5, "tag": "long"}}))
    assert answer["error"].startswith("Interrupted: the worker is shutting down") and "retry it" in answer["error"]
    assert time.monotonic() - started < 2 and _Sleeps.ended == ["long"]  # predict itself stopped, its finally ran
    worker.shutdown()


def stopped_as_it_leaves(monkeypatch: pytest.MonkeyPatch, predicts: RunningPredicts) -> list[bool]:
    """The drain's stop raised in the predict's thread as it leaves, after predict returned (once)."""
    leave = predicts.leave
    stops: list[bool] = []

    def leave_stopped() -> None:
        if not stops:
            stops.append(True)
            predicts.stop()  # lands at this thread's next check: right here, before it has left
        leave()

    monkeypatch.setattr(predicts, "leave", leave_stopped)
    return stops


def test_runpod_sync_predict_on_the_loop_keeps_its_output_when_the_drains_stop_lands_as_it_leaves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = runpod(WaitsSync)
    stops = stopped_as_it_leaves(monkeypatch, worker._on_loop_predicts)
    assert asyncio.run(worker.handle({"id": "a", "input": {"tag": "a"}})) == "a"
    assert stops == [True] and worker._on_loop_predicts.longest() is None


def test_runpod_sync_job_after_the_drains_end_is_interrupted_without_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUSERVE_GRACE_SECONDS", "0.05")
    _Sleeps.threads.clear()
    worker = runpod(WaitsSync)
    worker.begin_drain("a test")
    time.sleep(0.1)
    answer = asyncio.run(worker.handle({"id": "late", "input": {"tag": "late"}}))
    assert answer["error"].startswith("Interrupted: the worker is shutting down") and _Sleeps.threads == []
    worker.shutdown()


@gpuserve.model(name="overdue", timeout=1, grace=5)
class Overdue:
    def predict(self, seconds: float = 0.0, in_c: bool = False) -> str:
        if in_c:
            time.sleep(seconds)  # one call into C: no exception lands until it returns
            return "done"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return "done"


def overdue(monkeypatch: pytest.MonkeyPatch) -> tuple[RunpodWorker, list[int], list[int]]:
    """A worker whose watchdog looks every 50 ms, with a grace of 0.2 s; the signals it sends and exits it makes."""
    monkeypatch.setenv("GPUSERVE_GRACE_SECONDS", "0.2")
    monkeypatch.setattr(RunpodWorker, "watch_seconds", 0.05)
    signals: list[int] = []
    exits: list[int] = []
    monkeypatch.setattr("gpuserve.runtime.runpod_worker.os.kill", lambda pid, sig: signals.append(sig))
    monkeypatch.setattr("gpuserve.runtime.runpod_worker.os._exit", exits.append)
    return runpod(Overdue), signals, exits


def test_runpod_sync_predict_on_the_loop_past_timeout_and_grace_is_marked_stuck_drained_and_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker, signals, exits = overdue(monkeypatch)
    started = time.monotonic()
    try:
        answer = asyncio.run(worker.handle({"id": "long", "input": {"seconds": 4}}))
        state = worker.host.state
    finally:
        worker.shutdown()
    assert answer["error"].startswith("Interrupted: the worker is shutting down"), answer
    assert time.monotonic() - started < 2.5  # stuck at 1.2 s (timeout 1 + grace 0.2), stopped a grace later
    assert state == "failed" and exits == []
    assert signals == [signal.SIGTERM, signal.SIGTERM]  # again once out of the predict, where RunPod's handler ran


def test_runpod_sync_predict_on_the_loop_blocked_in_c_past_the_drain_exits_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker, signals, exits = overdue(monkeypatch)
    try:
        answer = asyncio.run(worker.handle({"id": "long", "input": {"seconds": 2.5, "in_c": True}}))
    finally:
        worker.shutdown()
    assert exits[:1] == [1] and signals[:1] == [signal.SIGTERM]  # at 1.6 s: stuck at 1.2, stopped at 1.4 in vain
    assert answer["error"].startswith("Interrupted: the worker is shutting down"), answer  # once the call returned


# RunPod's JobScaler, as much of it as the wrapper of its signal handler needs (runpod is not installed here).
FAKE_RUNPOD = """
import sys, types
rp_scale = types.ModuleType("runpod.serverless.modules.rp_scale")
class JobScaler:
    def handle_shutdown(self, signum, frame):
        self.stopped_by = signum
rp_scale.JobScaler = JobScaler
for name in ("runpod", "runpod.serverless", "runpod.serverless.modules"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["runpod.serverless.modules"].rp_scale = rp_scale
sys.modules["runpod.serverless.modules.rp_scale"] = rp_scale
"""


def test_runpod_signal_landing_while_the_model_holds_threadings_own_locks_drains_and_reaches_runpod() -> None:
    """Python runs a signal's handler in the main thread at its next line, which may be inside threading's own code
    in a sync predict on RunPod's loop: Thread.start() holds the first lock, join() and is_alive() the second. The
    drain starts threads there: daemon ones, which take neither in a way that waits on this thread."""
    code = FAKE_RUNPOD + textwrap.dedent(
        """
        import threading
        import gpuserve
        from gpuserve.runtime import ModelHost
        from gpuserve.runtime.runpod_worker import RunpodWorker

        @gpuserve.model(name="echo")
        class Echo:
            def predict(self, text: str) -> str:
                return text

        worker = RunpodWorker(ModelHost(Echo))
        worker.setup()
        worker.config(["handler.py", "--rp_serve_api"])
        scaler = JobScaler()
        with threading._active_limbo_lock, getattr(threading, "_shutdown_locks_lock", threading.Lock()):  # to 3.12
            JobScaler.handle_shutdown(scaler, 15, None)
        print(worker.host.state, scaler.stopped_by, flush=True)
        worker.shutdown()
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)  # or it hangs
    assert done.stdout.splitlines() == ["draining 15"], done.stderr


def cog(cls: type) -> CogBridge:
    bridge = CogBridge(ModelHost(cls))
    bridge.host.setup()
    return bridge


def in_a_thread(bridge: CogBridge, inputs: dict[str, Any]) -> Any:
    """bridge.predict on a fresh thread, as coglet calls a sync run(): its output, or what it raised."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(_outcome(bridge, inputs)))
    thread.start()
    thread.join(10)
    return result[0]


def _outcome(bridge: CogBridge, inputs: dict[str, Any]) -> Any:
    try:
        return bridge.predict(inputs)
    except BaseException as exc:
        return exc


@pytest.mark.parametrize("cls", [Waits, WaitsSync], ids=["async", "sync"])
def test_cog_predicts_from_thread_after_thread(cls: Any) -> None:
    bridge = cog(cls)
    assert [in_a_thread(bridge, {"tag": tag, "seconds": None}) for tag in "abc"] == ["a", "b", "c"]


@gpuserve.model(name="fails-bare")
class FailsBare:
    def predict(self, text: str) -> str:
        raise ValueError(f"bad {text}") from KeyError(text)


@gpuserve.model(name="fails-bare-async")
class FailsBareAsync:
    async def predict(self, text: str) -> str:
        raise ValueError(f"bad {text}") from KeyError(text)


@gpuserve.model(name="fails-streaming")
class FailsStreaming:  # not bare: its predict goes through host.predict() and PredictFailed
    def predict(self, text: str) -> Iterator[str]:
        raise ValueError(f"bad {text}") from KeyError(text)
        yield text


@pytest.mark.parametrize("cls", [FailsBare, FailsBareAsync, FailsStreaming], ids=["sync", "async", "not-bare"])
def test_cog_prediction_raises_the_models_own_exception_with_its_chain_cut(cls: Any) -> None:
    bridge = cog(cls)
    assert bridge.host.bare is (cls is not FailsStreaming)
    raised = _outcome(bridge, {"text": "x"})
    assert (type(raised), str(raised)) == (ValueError, "bad x")
    assert raised.__cause__ is None and raised.__suppress_context__


@gpuserve.model(name="leaves-a-task")
class LeavesATask:
    left: list[asyncio.Task[None]] = []
    stepped: list[str] = []

    async def _child(self, tag: str) -> None:
        self.stepped.append(tag)
        await asyncio.sleep(60)

    async def predict(self, tag: str = "x") -> str:
        assert asyncio.current_task() is not None  # in a task of a running loop, before its first wait too
        self.left.append(asyncio.get_running_loop().create_task(self._child(tag)))
        return tag


def test_cog_async_prediction_ends_with_the_tasks_it_left_stepped_once_and_cancelled() -> None:
    LeavesATask.left.clear()
    LeavesATask.stepped.clear()
    bridge = cog(LeavesATask)
    assert [in_a_thread(bridge, {"tag": tag}) for tag in "ab"] == ["a", "b"]
    assert LeavesATask.stepped == ["a", "b"] and [task.cancelled() for task in LeavesATask.left] == [True, True]


class CogCancel(BaseException):
    """What coglet raises in a prediction's thread to cancel it."""


async def _body(ran: list[str], tag: str) -> str:
    ran.append(tag)
    return tag


def test_cog_cancel_landing_as_the_predicts_task_is_made_leaves_nothing_to_run_in_the_next() -> None:
    pool = IdleLoop()
    ran: list[str] = []

    def made_then_cancelled(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        asyncio.Task(coro, loop=loop, **kwargs)  # made, not yet recorded, when the cancel lands
        raise CogCancel

    pool.loop.set_task_factory(made_then_cancelled)
    with pytest.raises(CogCancel):
        pool.run(_body(ran, "cancelled"))
    pool.loop.set_task_factory(pool._task)
    assert pool.run(_body(ran, "next")) == "next" and ran == ["next"]


def test_cog_cancel_landing_between_a_turns_stop_and_its_run_is_what_the_prediction_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = IdleLoop()
    ran: list[str] = []
    run_forever = pool.loop.run_forever

    def cancelled_once() -> None:
        monkeypatch.setattr(pool.loop, "run_forever", run_forever)
        raise CogCancel  # after stop(), before the turn: the loop's stop is still pending

    monkeypatch.setattr(pool.loop, "run_forever", cancelled_once)
    with pytest.raises(CogCancel):
        pool.run(_body(ran, "cancelled"))
    assert pool.run(_body(ran, "next")) == "next" and ran == ["next"]


@pytest.mark.parametrize("cls", [Waits, WaitsSync], ids=["async", "sync"])
def test_cog_prediction_past_the_grace_fails_as_interrupted(cls: Any) -> None:
    cls.ended.clear()
    bridge = cog(cls)
    bridge.drain.deadline = time.monotonic() + 0.3
    threading.Timer(0.3, bridge.drain.interrupt).start()  # what the drain's watcher does at the deadline
    started = time.monotonic()
    failed = in_a_thread(bridge, {"seconds": 5, "tag": "long"})
    assert isinstance(failed, Interrupted) and str(failed).endswith("retry it"), failed
    assert time.monotonic() - started < 3 and cls.ended == ["long"]  # predict itself stopped, its finally ran
    assert isinstance(in_a_thread(bridge, {"tag": "late"}), Interrupted)  # one arriving after the deadline


def test_cog_sync_prediction_keeps_its_output_when_the_drains_stop_lands_as_it_leaves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bridge = cog(WaitsSync)
    stops = stopped_as_it_leaves(monkeypatch, bridge.drain.threads)
    assert in_a_thread(bridge, {"tag": "a"}) == "a"
    assert stops == [True] and bridge.drain.threads.longest() is None


def test_validation_of_json_values_still_refuses_a_lone_surrogate_naming_the_input() -> None:
    model = ModelHost(Waits).signature.input_model
    with pytest.raises(Invalid, match="^input: Invalid JSON"):
        validate_strict(model, {"tag": "\ud800"}, prefix=("input",))
    assert validate_strict(model, {"seconds": 2.0, "tag": "t"}, prefix=("input",)).model_dump() == {
        "seconds": 2.0,
        "tag": "t",
    }


@gpuserve.model(name="slow-preempt", grace=1)
class SlowPreempt:
    def on_preempt(self) -> None:
        time.sleep(4)  # longer than the grace

    def predict(self, seconds: float = 0.0) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return "done"


def test_cog_prediction_is_interrupted_at_the_grace_while_on_preempt_still_runs() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    bridge = cog(SlowPreempt)
    bridge.drain.port = listener.getsockname()[1]
    bridge.drain.start()
    time.sleep(1.2)  # the watcher has seen cog listening
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(_outcome(bridge, {"seconds": 8})))
    thread.start()
    listener.close()  # cog's SIGTERM: its listener closes
    started = time.monotonic()
    thread.join(10)
    assert isinstance(outcome[0], Interrupted), outcome
    assert time.monotonic() - started < 3.5  # the grace (1 s) and the watcher's polling, not on_preempt's 4 s


@gpuserve.model(name="stubborn", grace=1)
class Stubborn:
    async def predict(self, seconds: float = 0.0) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:  # swallowed: the predict goes on
                pass
        return "done"


def test_runpod_async_predict_that_swallows_its_stop_is_marked_stuck_and_the_worker_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signals: list[int] = []
    monkeypatch.setattr("gpuserve.runtime.runpod_worker.os.kill", lambda pid, sig: signals.append(sig))
    worker = runpod(Stubborn)

    async def main() -> None:
        job = asyncio.ensure_future(worker.handle({"id": "long", "input": {"seconds": 4}}))
        await asyncio.sleep(0.2)
        job.cancel()  # RunPod's stop_job
        await asyncio.sleep(2.5)  # the grace (1 s) and the once-a-second watch
        assert worker.host.state == "failed" and signals == [signal.SIGTERM]
        with pytest.raises(asyncio.CancelledError):
            await job  # it still stops once the predict returns

    asyncio.run(main())

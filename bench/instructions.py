"""Per-job instructions on RunPod and cog, and per-request ones of `gpuserve serve` and hand-written FastAPI, counted
by valgrind's callgrind: the rows of bench/handlers.py and bench/serving.py, without the noise of timing them.

Each row's platform server (RunPod's `--rp_serve_api`, cog's HTTP server and its worker process) runs under
callgrind with counting off while it starts and takes --warmup jobs; then counting is switched on in each of its
processes (valgrind's vgdb: `instrumentation on`) for --jobs jobs sent one at a time on one connection, and the
counts are dumped. A job's instructions are the server's, all its processes together, divided by the jobs answered
2xx (cog answers 409 to a prediction sent before its slot is free again: its jobs are sent 2 ms apart, a 409 is
retried, and the table shows how many; their work is in the count). Counts are of user space only: the kernel's
share of a job (its loopback TCP, the same for every row) is not in them, so a difference is a larger share here
than of a whole job's CPU. The A/A rows were 0.998x-1.001x in four runs, and a row moved by up to 0.3% from one
run to the next; the machine's load reaches a count only through the work a server does while it waits (its
timers: about 0.2 million instructions a second, a few thousand a job), so two servers are counted at once.

The serving rows (`serve`: gpuserve serve and the FastAPI app of bench/serving.py, each with an async and a sync
no-op) are counted so at one connection and at 64, where the requests are sent at once, each connection sending
its share one after another (a few jobs more or less: the count is exact, every request answered).

Each gpuserve row is compared with the hand-written baseline and with the hand-written handler of its own kind
(`like`): an async predict with an async handler, `async def run()` or endpoint, a sync one with a sync handler,
`run()` or endpoint.

    python bench/instructions.py [--jobs 5000] [--warmup 300] [--only runpod|cog|serve] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from _harness import ROOT, free_port, server, table, versions
from handlers import AS_DEPLOYED, BODY, build, local_server, platform_python
from serving import CONTENDERS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gpuserve.adapters._common import PINS  # noqa: E402

RUNPOD_MINIMAL_SYNC = '''"""A minimal hand-written sync RunPod handler: the no-op (RunPod calls it on its loop)."""

import runpod


def handler(job):
    return job["input"]["text"]


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
'''


@dataclass(frozen=True)
class Case:
    name: str
    platform: str  # "runpod", "cog" or "serve"
    entry: str  # the handler file (runpod), "file.py:Runner" (cog), or a bench/serving.py contender (serve)
    model: str = "Noop"  # of bench/apps/noop.py: Noop (async predict) or NoopSync
    like: str = ""  # the hand-written row of the same kind; "" for a hand-written row
    baseline: bool = False  # the hand-written row the others of its platform and connections are set against
    connections: int = 1


SYNC_HANDLER = "RunPod hand-written, sync handler"
CASES = (
    Case("RunPod hand-written", "runpod", "minimal_handler.py", baseline=True),
    Case("RunPod hand-written again (A/A)", "runpod", "minimal_handler.py", like="RunPod hand-written"),
    Case(SYNC_HANDLER, "runpod", "minimal_sync_handler.py"),
    Case("RunPod gpuserve (async predict)", "runpod", "handler.py", like="RunPod hand-written"),
    Case("RunPod gpuserve (sync predict)", "runpod", "handler.py", "NoopSync", like=SYNC_HANDLER),
    Case("cog hand-written", "cog", "minimal_runner.py:Runner", baseline=True),
    Case("cog hand-written again (A/A)", "cog", "minimal_runner.py:Runner", like="cog hand-written"),
    Case("cog hand-written, async run()", "cog", "minimal_async_runner.py:Runner"),
    Case("cog gpuserve (async predict)", "cog", "runner.py:Runner", like="cog hand-written, async run()"),
    Case("cog gpuserve (sync predict)", "cog", "runner.py:Runner", "NoopSync", like="cog hand-written"),
    *(
        case
        for n in (1, 64)
        for case in (
            Case(f"FastAPI hand-written, {n} conn.", "serve", "FastAPI", baseline=True, connections=n),
            Case(
                f"FastAPI hand-written again (A/A), {n} conn.",
                "serve",
                "FastAPI",
                like=f"FastAPI hand-written, {n} conn.",
                connections=n,
            ),
            Case(f"FastAPI hand-written, sync endpoint, {n} conn.", "serve", "FastAPI sync", connections=n),
            Case(
                f"gpuserve serve (async predict), {n} conn.",
                "serve",
                "gpuserve",
                like=f"FastAPI hand-written, {n} conn.",
                connections=n,
            ),
            Case(
                f"gpuserve serve (sync predict), {n} conn.",
                "serve",
                "gpuserve sync",
                like=f"FastAPI hand-written, sync endpoint, {n} conn.",
                connections=n,
            ),
        )
    ),
)


# cog frees a prediction's slot a little after it answers (409 to a prediction sent at once): a pause after each
# answer keeps most jobs from a retry, whose work would count as theirs. An idle server's own work (its timers)
# is about 0.2 million instructions a second here, so the pause adds about 400 a job.
COG_PAUSE = 0.002


@dataclass(frozen=True)
class Count:
    case: str
    jobs: int
    busy: int  # 409s, retried
    instructions: int  # of every process of the server, while the jobs ran

    @property
    def per_job(self) -> float:
        return self.instructions / self.jobs


def send(port: int, path: str, jobs: int, pause: float) -> int:
    """`jobs` no-op jobs answered 2xx, one at a time on one keep-alive connection, `pause` seconds after each answer;
    the 409s retried (returned)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    busy = answered = 0
    try:
        while answered < jobs:
            connection.request("POST", path, BODY, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            text = answer.read()
            if answer.status == 409 and busy < 100 * jobs:
                busy += 1
                time.sleep(pause)
            elif answer.status == 200 and json.loads(text).get("output") == "hi":
                answered += 1
                time.sleep(pause)
            else:
                raise RuntimeError(f"answered {answer.status} {text[:300]!r}")
    finally:
        connection.close()
    return busy


def send_at_once(port: int, path: str, each: int, connections: int, timeout: float = 120.0) -> None:
    """`each` requests on each of `connections` keep-alive connections, the connections at once; every answer
    checked (200, the no-op's output), each read given `timeout` seconds."""

    async def one() -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        request = f"{head}Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY
        try:
            for _ in range(each):
                writer.write(request)
                answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
                status, *lines = answer.decode("latin-1").split("\r\n")
                headers = dict(line.lower().split(":", 1) for line in lines if ":" in line)
                if not status.startswith("HTTP/1.1 200") or "content-length" not in headers:
                    raise RuntimeError(f"port {port} answered {status!r} with headers {headers}")
                text = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout)
                if json.loads(text).get("output") != "hi":
                    raise RuntimeError(f"port {port} answered {status!r} {text[:300]!r}")
        finally:
            writer.close()

    async def all_of_them() -> None:
        await asyncio.gather(*(one() for _ in range(connections)))

    asyncio.run(all_of_them())


def monitor(pids: Sequence[str], command: str) -> None:
    """A callgrind monitor command (`instrumentation on`, `dump`) to each process, through valgrind's vgdb, which
    waits for it to be done (forcing a process blocked in a system call to take it)."""
    for pid in pids:
        done = subprocess.run(["vgdb", f"--pid={pid}", *command.split()], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"vgdb --pid={pid} {command}: exit {done.returncode}: {done.stderr[-2000:]}")


def under_callgrind(out: Path) -> list[str]:
    """The processes under callgrind writing to `out`: the server's, its workers too."""
    found = subprocess.run(["pgrep", "-f", "--", f"callgrind-out-file={out}/"], capture_output=True, text=True)
    return sorted(found.stdout.split())


def counted_pids(out: Path) -> list[str]:
    pids = under_callgrind(out)
    if not pids:
        raise RuntimeError(f"no process under callgrind writes to {out}")
    return pids


def ended(out: Path, seconds: float = 30.0) -> None:
    """Wait for every process writing to `out` to exit (a worker writes its last counts as it does), then kill
    those left: none outlives its case."""
    deadline = time.monotonic() + seconds
    while (left := under_callgrind(out)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def dumped_instructions(out: Path, pids: Sequence[str], timeout: float = 60.0) -> int:
    """The instructions in the first dump of each process (cg.PID.1), once all are written."""
    deadline = time.monotonic() + timeout
    while True:
        summaries = [_summary(out / f"cg.{pid}.1") for pid in pids]
        if all(found is not None for found in summaries):
            return sum(found for found in summaries if found is not None)
        if time.monotonic() > deadline:
            raise RuntimeError(f"callgrind wrote no dump for some of {list(pids)} in {out}")
        time.sleep(0.1)


def _summary(dump: Path) -> int | None:
    """A dump's total (its `summary:` line); None until it is written."""
    with contextlib.suppress(FileNotFoundError):
        for line in dump.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
    return None


def serving_server(contender: str, port: int) -> tuple[list[str], dict[str, str], tuple[str, bytes], str]:
    """A bench/serving.py contender, as local_server() gives a platform's: its arguments, environment, readiness
    and the path a request is sent to (run from the project's root, with the bench's own Python)."""
    found = next((c for c in CONTENDERS if c.name == contender), None)
    if found is None:
        raise ValueError(f"no bench/serving.py contender {contender!r}; there are {[c.name for c in CONTENDERS]}")
    return [str(port) if a == "PORT" else a for a in found.args], {}, ("/health", b""), "/predict"


def count(case: Case, directory: Path, jobs: int, warmup: int) -> Count:
    """The case's server under callgrind: counting off through its start and `warmup` jobs, on for `jobs` (sent
    over the case's connections, so a few more or fewer: `jobs` rounded to a multiple of them)."""
    serve = case.platform == "serve"
    python = sys.executable if serve else platform_python(case.platform, directory)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-", ignore_cleanup_errors=True) as tmp:
        out = Path(tmp)
        if serve:
            arguments, env, ready, path = serving_server(case.entry, port)
        else:
            arguments, env, ready, path = local_server(case.platform, python, port, case.entry)
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes"]
        command += [f"--callgrind-out-file={out}/cg.%p", python, *arguments]
        env |= {**AS_DEPLOYED, "PYTHONHASHSEED": "0"}  # the same hashes in every process: counts that repeat
        pause = COG_PAUSE if case.platform == "cog" else 0.0
        with contextlib.ExitStack() as stack:
            stack.callback(ended, out)  # after the server is stopped
            stack.enter_context(
                server(
                    case.name,
                    command,
                    port=port,
                    ready_path=ready[0],
                    ready_body=ready[1],
                    cpu_set=None,
                    cwd=directory,
                    env=env,
                    timeout=600.0,  # a start under valgrind: ten times slower, or more
                )
            )
            each = max(1, round(jobs / case.connections))
            if case.connections == 1:
                send(port, path, warmup, pause)
            else:  # as many at once as counted: the pools and buffers they need are made before
                send_at_once(port, path, max(1, round(warmup / case.connections)), case.connections)
            pids = counted_pids(out)
            monitor(pids, "instrumentation on")
            busy = send(port, path, jobs, pause) if case.connections == 1 else 0
            if case.connections > 1:
                send_at_once(port, path, each, case.connections)
            if (now := under_callgrind(out)) != pids:  # one that started meanwhile was not counted, one gone is lost
                raise RuntimeError(f"{case.name}: its processes changed while counted: {pids} -> {now}")
            monitor(pids, "dump")
            return Count(case.name, each * case.connections, busy, dumped_instructions(out, pids))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000, help="jobs counted a server")
    parser.add_argument("--warmup", type=int, default=300, help="jobs each server takes before counting")
    parser.add_argument("--only", help="a platform to count alone: runpod, cog or serve")
    parser.add_argument("--quick", action="store_true", help="a few jobs: only shows the script works")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("vgdb") is None:
        print("bench/instructions.py needs valgrind (Debian's package `valgrind`; `make bench` installs it)")
        return 1
    jobs, warmup = (20, 20) if args.quick else (args.jobs, args.warmup)
    cases = [case for case in CASES if args.only in (None, case.platform)]
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        built = {}
        for platform, model in sorted({(case.platform, case.model) for case in cases if case.platform != "serve"}):
            built[(platform, model)] = directory = build(platform, model, Path(tmp))
            (directory / "minimal_sync_handler.py").write_text(RUNPOD_MINIMAL_SYNC)
        for case in cases:  # each platform's virtualenv made once, before servers start two at a time
            if case.platform == "serve":
                built[(case.platform, case.model)] = ROOT
            else:
                platform_python(case.platform, built[(case.platform, case.model)])
        workers = min(2, len(os.sched_getaffinity(0)))  # counts do not depend on what else runs
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(count, case, built[(case.platform, case.model)], jobs, warmup) for case in cases]
            try:
                counts = {count.case: count for count in (future.result() for future in futures)}
            except BaseException:
                pool.shutdown(cancel_futures=True)  # a failed case ends the run, not after minutes of the others
                raise
    rows = []
    for case in cases:
        got = counts[case.name]
        group = (case.platform, case.connections)
        base = counts[next(c.name for c in cases if (c.platform, c.connections) == group and c.baseline)]
        like = counts[case.like] if case.like else None
        rows.append(
            [
                case.name,
                got.jobs,
                got.busy,
                round(got.per_job),
                "-" if case.baseline else f"{got.per_job / base.per_job:.3f}x",
                "-" if like is None else f"{got.per_job / like.per_job:.3f}x",
                "-" if like is None else f"{got.per_job - like.per_job:+,.0f}",
            ]
        )
    print(f"# Instructions a job or request (valgrind's callgrind, user space): no-op, {jobs} a server")
    platforms = f"runpod {PINS['runpod']}, cog {PINS['cog']} (their local runtimes)"
    client = "this script's (http.client; asyncio streams at 64 connections)"
    print(f"# {versions('gpuserve', 'fastapi', 'uvicorn', 'uvloop', 'httptools', load=client)}; {platforms}")
    headers = ["handler or server", "jobs", "409s retried", "instructions per job", "vs hand-written"]
    headers += ["vs hand-written of its kind", "instructions beyond it"]
    print(table(headers, rows))
    if args.json:
        out = [
            {**asdict(counts[c.name]), "per_job": counts[c.name].per_job, "like": c.like, "connections": c.connections}
            for c in cases
        ]
        args.json.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

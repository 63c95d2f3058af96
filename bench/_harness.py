"""What every bench script shares: servers started pinned to a CPU, one load generator, and the table.

The load generator is `wrk` where it is on PATH (`make bench` installs it from Debian), else a small asyncio one
(`PythonLoad`) whose ceiling the serving bench shows against a bare ASGI app. Servers run on one CPU and the load
generator on another where the machine has two, so the two do not fight for a core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
# Server output (gpuserve's request log among it) goes to memory where the machine has /dev/shm, not to a disk
# whose writes would be measured with the server.
LOGS = Path("/dev/shm") if Path("/dev/shm").is_dir() else None


# CPUs ------------------------------------------------------------------------------------------------------------
_AVAILABLE = sorted(os.sched_getaffinity(0))  # at import: a script may pin itself later


def cpus() -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load generator CPUs): the first CPU for the server and the rest for the load, or no pinning."""
    available = _AVAILABLE
    if len(available) < 2:
        return None, None
    return {available[0]}, set(available[1:])


def pinned(cpu_set: set[int] | None) -> Any:
    """A preexec_fn pinning the child to `cpu_set` (None: no pinning)."""
    if cpu_set is None:
        return None
    return lambda: os.sched_setaffinity(0, cpu_set)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# servers ---------------------------------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def http(
    url: str, body: bytes | None = None, timeout: float = 5.0, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request with the standard library: (status, body); status 0 when nothing answered."""
    given = {"Content-Type": "application/json", **(headers or {})} if body is not None else dict(headers or {})
    request = urllib.request.Request(url, data=body, headers=given, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, TimeoutError):
        return 0, b""


@contextlib.contextmanager
def server(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    ready_path: str,
    cpu_set: set[int] | None,
    ready_body: bytes = b"",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
) -> Iterator[Server]:
    """Start `command` (which listens on 127.0.0.1:port), wait until GET ready_path answers 200 with `ready_body`
    in its body, and stop it after; its output file is kept only if something failed."""
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in name)  # a case's name, in a file's name
    log = Path(tempfile.mkstemp(prefix=f"bench-{safe}-", suffix=".log", dir=LOGS)[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            preexec_fn=pinned(cpu_set),
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    ended = False
    try:
        deadline = time.monotonic() + timeout
        while (answer := http(url + ready_path, timeout=1.0))[0] != 200 or ready_body not in answer[1]:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} did not become ready on {url}{ready_path}:\n{tail}")
            time.sleep(0.05)
        yield Server(name=name, url=url, process=process, log=log)
        ended = True
    finally:
        stop(process)
        if ended:  # kept only where something failed: a run's logs reach hundreds of MB in /dev/shm
            log.unlink(missing_ok=True)


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user and system) used so far by the live processes of a process group (a server and the
    workers it started): what a request costs the server, whatever else the machine runs meanwhile."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp, ..., utime (11), stime (12)
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def measured(process: subprocess.Popen[bytes], run: Callable[[], Load]) -> tuple[Load, float]:
    """The load `run` measures, and the server's CPU microseconds per request answered 2xx during it."""
    before = group_cpu_seconds(process.pid)
    result = run()
    used = group_cpu_seconds(process.pid) - before
    good = result.good_rps / result.rps * result.requests if result.rps else 0
    return result, used * 1e6 / good if good else float("nan")


def stop(process: subprocess.Popen[bytes], seconds: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after `seconds`."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(seconds)


# load ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """One load run's result: requests per second, latency percentiles in ms, failed or non-2xx answers, and
    requests per second answered 2xx (cog answers 409 when a prediction comes before its slot is free again)."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    good_rps: float


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "seconds": %f, "p50_us": %f, "p99_us": %f, "errors": %d, ' ..
    '"non2xx": %d}\\n', summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout, e.status))
end
"""


# Seconds between two load runs: a run's last requests, their connections closed by the load generator, may still
# wait in a server's queue (gpuserve's holds 64); the next run starts once they are answered, on every server.
SETTLE_SECONDS = 1.0


def load_generator() -> str:
    return "wrk" if shutil.which("wrk") else "python"


def load(
    url: str,
    body: bytes,
    *,
    connections: int,
    seconds: float,
    cpu_set: set[int] | None,
    warmup: float = 1.0,
    settle: float = SETTLE_SECONDS,
) -> Load:
    """POST `body` to `url` over `connections` keep-alive connections for `seconds`, after a short warm-up, then
    wait `settle` seconds."""
    if load_generator() == "wrk":
        result = _wrk(url, body, connections=connections, seconds=seconds, cpu_set=cpu_set, warmup=warmup)
    else:
        result = _python_load(url, body, connections=connections, seconds=seconds, cpu_set=cpu_set, warmup=warmup)
    time.sleep(settle)  # the requests of the connections just closed are answered before the next run
    return result


def _wrk(url: str, body: bytes, *, connections: int, seconds: float, cpu_set: set[int] | None, warmup: float) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT)
    threads = len(cpu_set) if cpu_set else 1
    env = {**os.environ, "BENCH_BODY": body.decode()}
    result: dict[str, Any] = {}
    runs = [(warmup, True)] if warmup > 0 else []
    for duration, warming in [*runs, (seconds, False)]:
        command = [
            "wrk",
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            url,
        ]
        out = subprocess.run(command, capture_output=True, text=True, env=env, preexec_fn=pinned(cpu_set), check=True)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
        result = json.loads(line[len("BENCH ") :])
        if warming:
            time.sleep(SETTLE_SECONDS)
    Path(script.name).unlink()
    return Load(
        rps=result["requests"] / result["seconds"],
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        errors=result["errors"],
        requests=result["requests"],
        good_rps=(result["requests"] - result["non2xx"]) / result["seconds"],
    )


def _python_load(
    url: str, body: bytes, *, connections: int, seconds: float, cpu_set: set[int] | None, warmup: float
) -> Load:
    """The asyncio load generator, in a process of its own pinned like wrk would be."""
    command = [sys.executable, str(Path(__file__).resolve()), "--load", url, str(connections), str(seconds)]
    command.append(str(warmup))
    out = subprocess.run(
        command, input=body, capture_output=True, preexec_fn=pinned(cpu_set), check=True, timeout=seconds + 60
    )
    return Load(**json.loads(out.stdout))


class PythonLoad:
    """Keep-alive HTTP/1.1 POSTs over raw asyncio streams (uvloop where installed): no client library in the way."""

    def __init__(self, url: str, body: bytes, connections: int) -> None:
        rest = url.removeprefix("http://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        self.host, self.port, self.connections = host, int(port or 80), connections
        self.request = (
            f"POST /{path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.latencies: list[float] = []
        self.errors = 0
        self.recording = False

    async def _connection(self, until: float) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            while time.perf_counter() < until:
                started = time.perf_counter()
                writer.write(self.request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                if self.recording:
                    self.latencies.append(time.perf_counter() - started)
                    if not head.startswith(b"HTTP/1.1 2"):
                        self.errors += 1
        finally:
            writer.close()

    async def run(self, seconds: float, warmup: float) -> dict[str, Any]:
        if warmup > 0:
            until = time.perf_counter() + warmup
            await asyncio.gather(*(self._connection(until) for _ in range(self.connections)))
            await asyncio.sleep(SETTLE_SECONDS)
        self.recording = True
        started = time.perf_counter()
        until = started + seconds
        await asyncio.gather(*(self._connection(until) for _ in range(self.connections)))
        elapsed = time.perf_counter() - started
        ordered = sorted(self.latencies) or [0.0]
        good = len(self.latencies) - self.errors
        return {
            "good_rps": good / elapsed,
            "rps": len(self.latencies) / elapsed,
            "p50_ms": ordered[len(ordered) // 2] * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            "errors": self.errors,
            "requests": len(self.latencies),
        }


# output ----------------------------------------------------------------------------------------------------------
def median_load(runs: Sequence[Load]) -> Load:
    """The run with the median throughput (its own latencies kept with it), errors summed over all runs."""
    ordered = sorted(runs, key=lambda run: run.rps)
    middle = ordered[len(ordered) // 2]
    return Load(
        rps=middle.rps,
        p50_ms=middle.p50_ms,
        p99_ms=middle.p99_ms,
        errors=sum(run.errors for run in runs),
        requests=middle.requests,
        good_rps=middle.good_rps,
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table, columns padded so it also reads in a terminal."""
    cells = [[str(h) for h in headers], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
    return str(value)


def versions(*packages: str, load: str | None = None) -> str:
    """One line naming the machine, Python, the load generator (`load`, where the script has its own) and the
    given packages' versions."""
    from importlib import metadata

    found = []
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"load generator {load or load_generator()}; " + ", ".join(found)
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def middle_half(values: Sequence[float]) -> str:
    """The rounds' paired ratios from the first quartile to the third: how far one round's ratio moves on this
    machine, against which the median's distance from 1.00x can be read."""
    if len(values) < 2:
        return f"{values[0]:.2f}x" if values else "-"
    low, _, high = statistics.quantiles(values, n=4, method="inclusive")
    return f"{low:.2f}x-{high:.2f}x"


INTERVAL = "95% interval of the median"  # the column median_interval() fills


def median_interval(values: Sequence[float], confidence: float = 0.95) -> str:
    """The median's distribution-free confidence interval (the sign test's): the j-th smallest and j-th largest of
    the rounds' ratios, j the largest with P(Binomial(n, 1/2) < j) <= (1 - confidence) / 2, so that the machine's
    median ratio lies between them with at least that confidence. Unlike the middle half, it narrows as rounds are
    added: it says whether a median's distance from 1.00x, or from a goal, is more than this machine's noise.
    Fewer than 6 rounds cannot give 95%: "-"."""
    ordered = sorted(values)
    rounds = len(ordered)
    below, tail = 0, 0.0
    while below < rounds and tail + math.comb(rounds, below) / 2**rounds <= (1 - confidence) / 2:
        tail += math.comb(rounds, below) / 2**rounds
        below += 1
    return f"{ordered[below - 1]:.2f}x-{ordered[rounds - below]:.2f}x" if below else "-"


if __name__ == "__main__" and sys.argv[1:2] == ["--load"]:  # the Python load generator's own process
    _url, _connections, _seconds, _warmup = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    _result = asyncio.run(PythonLoad(_url, sys.stdin.buffer.read(), _connections).run(_seconds, _warmup))
    print(json.dumps(_result))

"""Run a plan: commands as processes (their output is the progress), API calls with httpx, one step at a time.

Preflight problems stop it before step 1. A failing step stops it there, saying which step, what the platform
or the tool said (secrets masked), what earlier steps already did, and the fix. Nothing is rolled back: each
step leaves the platform in a state the next deploy picks up from (a pushed image, an existing endpoint).
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DeployError, GpuserveError
from ..loader import LoadedApp
from .plan import Bindings, Call, Choose, Command, Plan, Render, Secret, SecretFile, Step, fill_text, filled
from .preflight import PreflightError

if TYPE_CHECKING:
    import httpx
    from rich.console import Console

ATTEMPTS = 4  # an API call is tried this often on 429, 5xx and connection errors
BACKOFF_S = 1.0  # then doubled each time; a Retry-After up to MAX_WAIT_S wins
MAX_WAIT_S = 30.0
TIMEOUT_S = 60.0
TAIL_LINES = 30  # of a failed command's output, in the error


def require() -> None:
    """httpx and rich, which running a plan needs (a dry run needs neither)."""
    missing = [name for name in ("httpx", "rich") if importlib.util.find_spec(name) is None]
    if missing:
        raise GpuserveError(
            f"gpuserve deploy needs {' and '.join(missing)} to run a plan (--dry-run does not). "
            f"Fix: pip install {' '.join(missing)}"
        )


class Executor:
    """Runs one plan's steps in order; `bindings` holds what the API calls read (ids, versions)."""

    def __init__(
        self,
        plan: Plan,
        app: LoadedApp,
        console: Console,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.plan = plan
        self.app = app
        self.console = console
        self.env = dict(os.environ if env is None else env)
        self.sleep = sleep
        self.bindings: Bindings = {}
        self.secrets = [s for s in _secrets(plan) if len(s.value) >= 4]

    def run(self) -> Bindings:
        if self.plan.missing:
            raise PreflightError("gpuserve deploy", list(self.plan.missing))
        import httpx

        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=True) as client:
            for number, step in enumerate(self.plan.steps, start=1):
                self._step(number, step, client)
        return self.bindings

    def _step(self, number: int, step: Step, client: httpx.Client) -> None:
        """Run one step under a spinner; a failure says which step, and that earlier ones stay done."""
        total = len(self.plan.steps)
        call = (step.update if step.key in self.bindings else step.create) if isinstance(step, Choose) else None
        title = f"{step.title}: {call.title}" if call is not None else step.title
        started = time.monotonic()
        with self.console.status(f"[{number}/{total}] {title}") as status:

            def progress(line: str) -> None:
                status.update(f"[{number}/{total}] {line[:160]}")

            try:
                if isinstance(step, Render):
                    self._render(step)
                elif isinstance(step, Command):
                    self._command(step, progress)
                else:
                    request = call if call is not None else step
                    assert isinstance(request, Call)
                    self.bindings |= self._call(client, request)
            except DeployError as exc:
                done = {1: "no step had run", 2: "step 1 finished"}.get(number, f"steps 1-{number - 1} finished")
                raise DeployError(f"step {number} ({title}) failed ({done}; nothing is undone):\n{exc}") from None
        took = time.monotonic() - started
        self.console.print(f"[{number}/{total}] done: {title} ({took:.1f} s)", markup=False, highlight=False)

    # steps -----------------------------------------------------------------------------------------------------
    def _render(self, step: Render) -> None:
        from ..build import build

        build(self.app, step.target, step.directory)

    def _command(self, step: Command, progress: Callable[[str], None]) -> None:
        with tempfile.TemporaryDirectory(prefix="gpuserve-deploy-") as scratch:
            argv = [self._arg(a, Path(scratch)) for a in step.argv]
            tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=step.cwd,
                    env=self.env,
                    stdin=subprocess.PIPE if step.stdin is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    errors="replace",
                )
            except OSError as exc:
                raise DeployError(f"{step.lines()[0]} could not start ({exc}). Fix: {step.fix}") from None
            if step.stdin is not None and proc.stdin is not None:
                proc.stdin.write(step.stdin.value + "\n")
                proc.stdin.close()
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = self._mask(raw.rstrip())
                if line:
                    tail.append(line)
                    self._show(line, progress)
            code = proc.wait()
        if code != 0:
            said = "\n".join(f"    {line}" for line in tail)
            raise DeployError(f"{step.lines()[0]} exited with status {code}; its last lines:\n{said}\nFix: {step.fix}")

    def _call(self, client: httpx.Client, call: Call) -> Bindings:
        import httpx

        url = fill_text(call.url, self.bindings)
        body = filled(call.body, self.bindings) if call.body is not None else None
        headers = {"Authorization": f"Bearer {call.token.value}", "Accept": "application/json"}
        response: httpx.Response | None = None
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            try:
                response = client.request(call.method, url, json=body, headers=headers)
            except httpx.TransportError as exc:
                if last:
                    raise DeployError(
                        f"{call.method} {url} could not be reached after {ATTEMPTS} tries ({type(exc).__name__}: "
                        f"{exc}). Fix: check the network and the platform's status page, then deploy again"
                    ) from None
                self.sleep(BACKOFF_S * 2**attempt)
                continue
            if (response.status_code == 429 or response.status_code >= 500) and not last:
                self.sleep(_wait(response, BACKOFF_S * 2**attempt))
                continue
            break
        assert response is not None
        status = response.status_code
        if call.absent == status:
            return {}
        if status in call.refusals:
            raise DeployError(call.refusals[status])
        if status >= 400:
            raise DeployError(f"{call.method} {url} answered {status}: {_detail(response)}. Fix: {_fix(status, call)}")
        answer = response.json() if response.content else {}
        return call.read(answer) if call.read is not None else {}

    # helpers ---------------------------------------------------------------------------------------------------
    def _arg(self, arg: str | Secret | SecretFile, scratch: Path) -> str:
        if isinstance(arg, Secret):
            return arg.value
        if isinstance(arg, SecretFile):
            path = scratch / "secrets.json"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump({s.name: s.value for s in arg.secrets}, handle)
            return str(path)
        return arg

    def _mask(self, line: str) -> str:
        for secret in self.secrets:
            line = line.replace(secret.value, str(secret))
        return line

    def _show(self, line: str, progress: Callable[[str], None]) -> None:
        """A terminal shows the latest line beside the spinner; a log (CI) keeps every line."""
        if self.console.is_terminal:
            progress(line)
        else:
            self.console.print(f"    {line}", markup=False, highlight=False)


def _secrets(plan: Plan) -> list[Secret]:
    found: list[Secret] = []
    for step in plan.steps:
        calls = [step.create, step.update] if isinstance(step, Choose) else [step]
        for item in calls:
            if isinstance(item, Call):
                found.append(item.token)
            elif isinstance(item, Command):
                found += [a for a in item.argv if isinstance(a, Secret)]
                found += [s for a in item.argv if isinstance(a, SecretFile) for s in a.secrets]
                found += [item.stdin] if item.stdin is not None else []
    return found


def _wait(response: httpx.Response, default: float) -> float:
    try:
        return min(float(response.headers.get("Retry-After", default)), MAX_WAIT_S)
    except ValueError:
        return default


def _detail(response: httpx.Response) -> str:
    """What the platform said: RunPod's and Replicate's problem+json (title, detail, errors), else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if not isinstance(body, dict):
        return json.dumps(body)[:500]
    said = [str(body[k]) for k in ("title", "detail", "error", "message") if body.get(k)]
    said += [str(e) for e in body.get("errors") or []]
    return "; ".join(said) or json.dumps(body)[:500]


def _fix(status: int, call: Call) -> str:
    if status == 401:
        return f"the platform refused {call.token.name}: check that it is current and belongs to this account"
    if status == 403:
        return f"{call.token.name} lacks the permission for this call: give the token write access"
    if status in (400, 409, 422):
        return "the platform refused the request body; the reason is above (a name in use, a value out of range)"
    return "try again later; if it persists, check the platform's status page"

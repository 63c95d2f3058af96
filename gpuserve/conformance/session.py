"""One conformance run: the in-process answers first, then each target built, installed, started and called.

Every target's answer to every input is compared with the in-process one (compare.py). A target that cannot be
installed or started, or stops answering, fails its column with the reason; the others still run. Whatever was
started is stopped before the next target starts, and on the way out of an interrupted run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..build import build
from ..loader import LoadedApp
from . import known
from .compare import Outcome, difference
from .inputs import InputCase
from .processes import TargetDown, child_env
from .reference import Reference
from .runners import RUNNERS, Context
from .runners.base import Call, guarded
from .venvs import VenvError, python_of, venv_for, venv_ready

Step = Callable[[str, str], None]  # (where: "runpod", "in-process"; what is happening)
# Progress comes in two grains: phases (building, installing, starting), and details within them (pip's lines,
# each input): a terminal shows both as they pass, a log keeps the phases.
START_SECONDS_CAP = 600.0
CALL_SECONDS_MARGIN = 30.0


@dataclass(frozen=True)
class Cell:
    outcome: Outcome
    difference: str | None = None
    known: str | None = None  # a platform's documented behaviour explains the difference

    @property
    def status(self) -> Literal["pass", "fail", "known"]:
        if self.difference is None:
            return "pass"
        return "known" if self.known else "fail"


@dataclass
class Column:
    """One endpoint of one target ("modal web"): a cell per input, or the reason it could not run."""

    target: str
    name: str
    cells: list[Cell] = field(default_factory=list)
    error: str | None = None


@dataclass
class Timing:
    """Seconds per phase of one target: build, virtualenv (0 when cached), start to ready, and all calls."""

    target: str
    build: float = 0.0
    venv: float = 0.0
    start: float = 0.0
    calls: float = 0.0

    @property
    def total(self) -> float:
        return self.build + self.venv + self.start + self.calls


@dataclass
class Report:
    app: str
    cases: list[InputCase]
    reference: list[Outcome]
    drift: list[str] = field(default_factory=list)  # packages here that are not the image's pinned versions
    columns: list[Column] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)

    @property
    def differences(self) -> int:
        """Cells that differ without a known reason, plus one per column that could not run."""
        failed = sum(1 for column in self.columns for cell in column.cells if cell.status == "fail")
        return failed + sum(1 for column in self.columns if column.error)

    @property
    def ok(self) -> bool:
        return self.differences == 0


def run(loaded: LoadedApp, targets: list[str], cases: list[InputCase], step: Step, detail: Step) -> Report:
    """Compare each target with the in-process model on each input. Raises what the model's setup raises."""
    reference = Reference(loaded)
    step("in-process", "running the model's setup()")
    reference.setup()
    try:
        expected = []
        for index, case in enumerate(cases, 1):
            detail("in-process", f"input {index}/{len(cases)}: {case.label}")
            expected.append(reference.call(case.value))
        report = Report(loaded.entry, cases, expected, reference.drift())
        with tempfile.TemporaryDirectory(prefix="gpuserve-test-") as work:
            built = {}
            for target in targets:  # all first: a spec a target cannot express stops the run before anything starts
                step(target, "building")
                began = time.perf_counter()
                built[target] = build(loaded, target, Path(work) / target / "build").directory
                report.timings.append(Timing(target, build=time.perf_counter() - began))
            session = _Session(loaded, reference, report, step, detail)
            for target, timing in zip(targets, report.timings, strict=True):
                report.columns += session.target(target, built[target], timing)
        return report
    finally:
        reference.shutdown()


@dataclass
class _Session:
    loaded: LoadedApp
    reference: Reference
    report: Report
    step: Step
    detail: Step

    def target(self, target: str, directory: Path, timing: Timing) -> list[Column]:
        """Install, start and call one target: its columns, each a cell per input or the reason it did not run."""
        runner = RUNNERS[target]
        streaming = self.loaded.signature.streaming
        columns = [Column(target, name) for name in runner.endpoints(streaming)]
        began = time.perf_counter()
        requirements = runner.requirements(directory)
        if not venv_ready(requirements):
            self.step(target, f"installing {len(requirements)} requirements in a virtualenv (once: it is cached)")
        try:
            venv = venv_for(requirements, on_step=lambda line: self.detail(target, line))
        except VenvError as exc:
            return _failed(columns, f"cannot install its requirements: {exc}")
        timing.venv = time.perf_counter() - began
        spec = self.loaded.spec
        context = Context(
            directory=directory,
            python=python_of(venv),
            env=child_env(dict(spec.image.env_vars)),
            class_name=spec.class_name,
            streaming=streaming,
            work=directory.parent,
            start_timeout=min(float(spec.setup_timeout), START_SECONDS_CAP),
            call_timeout=float(spec.timeout) + CALL_SECONDS_MARGIN,
        )
        self.step(target, "starting with its platform's local runtime")
        began = time.perf_counter()
        try:
            with runner.serve(context) as endpoints:
                timing.start = time.perf_counter() - began
                began = time.perf_counter()
                calls = {endpoint.name: guarded(endpoint.call) for endpoint in endpoints}
                cases = self.report.cases
                for index, (case, expected) in enumerate(zip(cases, self.report.reference, strict=True), 1):
                    self.detail(target, f"input {index}/{len(cases)}: {case.label}")
                    for column in columns:
                        call = calls[column.name]
                        column.cells.append(self.cell(target, case.value, expected, call))
                timing.calls = time.perf_counter() - began
                self.step(target, "stopping")
        except TargetDown as exc:
            return _failed(columns, str(exc))
        return columns

    def cell(self, target: str, value: Any, expected: Outcome, call: Call) -> Cell:
        """Call the target with value; the difference from the in-process answer, and a known reason for it."""
        got = call(value)
        found = difference(expected, got)
        if found is None:
            return Cell(got)
        declared = set(self.loaded.signature.input_model.model_fields)
        return Cell(got, found, known.explain(target, value, expected, got, declared, (self.reference.call, call)))


def _failed(columns: list[Column], reason: str) -> list[Column]:
    for column in columns:
        column.error = reason
    return columns

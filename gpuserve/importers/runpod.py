"""`gpuserve import runpod handler.py`: a RunPod worker -> a gpuserve app that calls its handler unchanged.

The app imports the handler's module in setup(), so what the module loads at import (the model) is loaded
once per container, as on RunPod; its `runpod.serverless.start(...)` call is made a no-op while it imports,
since gpuserve serves the handler itself. predict() builds the job RunPod would hand the handler
({"id", "input"}) and reads the answer as RunPod does: {"error": ...} fails the request with that message.
Clients send the same `{"input": {...}}` body as to RunPod.
"""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

from ..adapters._common import PINS
from .dockerfile import read_dockerfile
from .project import DEFAULT_GPU, check_out, image_entries, model_name, read_requirements, resolve_gpu
from .pysource import Function, Source, constant_return, failed, keyword, own_nodes, yields
from .report import Report
from .runpod_inputs import read_inputs
from .writer import AppPlan

_START = {"runpod.serverless.start", "runpod.serverless.worker.start"}
_RUNPOD_TARGET_FILES = {"handler.py"}  # what `gpuserve build --target runpod` writes beside the app
_CONFIG = {"handler", "concurrency_modifier", "return_aggregate_stream", "refresh_worker"}


def plan_runpod(
    handler: Path,
    *,
    dockerfile: Path | None = None,
    out: Path | None = None,
    gpu: str | None = None,
    name: str | None = None,
) -> AppPlan:
    """Read the handler file (and the Dockerfile beside it); the plan of the app, written beside the handler."""
    handler = handler.resolve()
    if handler.suffix != ".py" or not handler.stem.isidentifier():
        raise failed(
            "gpuserve import runpod", "HANDLER", str(handler), "is not a Python module", hint="e.g. handler.py"
        )
    root = handler.parent
    source = Source.read(handler)
    out = check_out(out, root, handler, default="app.py")
    report = Report()
    config = _config(source)
    function = _handler(config, source)
    command = ["gpuserve", "import", "runpod", handler.name, "-o", out.name]
    if dockerfile:
        given = dockerfile.resolve()
        command += ["--dockerfile", str(given.relative_to(root) if given.is_relative_to(root) else given)]
    command += ["--gpu", gpu] if gpu else []
    command += ["--name", name] if name else []
    project = root.parent.name if root.name in ("src", "app", "worker") else root.name
    plan = AppPlan(
        command=shlex.join(command),
        summary=f"The RunPod handler {handler.name}:{function.name}, served by gpuserve; the handler runs "
        f"unchanged.\n\nWritten by `gpuserve import runpod`: edit the handler, or import again after changing "
        "which input keys it reads or its Dockerfile.",
        name=model_name(name, [project], report),
        class_name=_class_name(function.name),
        report=report,
        out=out,
    )
    wants_gpu = _image(handler, dockerfile, plan, report)
    plan.gpu = resolve_gpu(gpu, wanted=wants_gpu, default=DEFAULT_GPU)
    if plan.gpu and not gpu:
        report.decide("gpu", plan.gpu, f"the base image is a CUDA image: {DEFAULT_GPU} is the default; --gpu chooses")
    _start_options(config, source, plan, report)
    _wrap(source, handler.stem, function, plan, report)
    if handler.name in _RUNPOD_TARGET_FILES:
        report.decide(
            handler.name,
            None,
            f"gpuserve's runpod target writes a {handler.name} of its own: to build for it, rename this module "
            "(e.g. worker.py) and import again; the other targets take it as it is",
        )
    return plan


def _config(source: Source) -> dict[str, ast.expr]:
    """The keys of the dict passed to runpod.serverless.start, as expressions."""
    calls = [n for n in ast.walk(source.tree) if isinstance(n, ast.Call) and source.qualname(n.func) in _START]
    if not calls:
        raise failed(
            source.name,
            "runpod.serverless.start",
            None,
            "is never called, so the handler cannot be found",
            hint='end the file with runpod.serverless.start({"handler": handler})',
        )
    argument = calls[0].args[0] if calls[0].args else keyword(calls[0], "config")
    if isinstance(argument, ast.Name):
        assigned = [
            s.value
            for s in source.tree.body
            if isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == argument.id for t in s.targets)
        ]
        argument = assigned[-1] if assigned else argument
    if not isinstance(argument, ast.Dict) or not all(isinstance(k, ast.Constant) for k in argument.keys):
        raise failed(
            source.where(calls[0]),
            "runpod.serverless.start",
            source.segment(calls[0]),
            "takes a config that cannot be read without running the file",
            hint='pass a dict written out: runpod.serverless.start({"handler": handler})',
        )
    return {str(k.value): v for k, v in zip(argument.keys, argument.values, strict=True) if isinstance(k, ast.Constant)}


def _handler(config: dict[str, ast.expr], source: Source) -> Function:
    node = config.get("handler")
    functions = source.functions()
    if isinstance(node, ast.Name) and node.id in functions:
        return functions[node.id]
    raise failed(
        source.name,
        "handler",
        source.segment(node) if node is not None else None,
        "is not a function defined at the top of the file",
        allowed=", ".join(functions) or "no functions are defined there",
        hint='define `def handler(job):` and pass {"handler": handler}',
    )


def _class_name(function: str) -> str:
    words = [w for w in function.split("_") if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Handler"
    return name if name.endswith("Handler") else f"{name}Handler"


def _image(handler: Path, dockerfile: Path | None, plan: AppPlan, report: Report) -> bool:
    """The image from the Dockerfile (or requirements.txt beside the handler); whether it is a CUDA image."""
    found = dockerfile or next(
        (p / "Dockerfile" for p in (handler.parent, handler.parent.parent) if (p / "Dockerfile").is_file()), None
    )
    cuda = False
    pip: list[tuple[str, str]] = []
    if found is not None and found.is_file():
        image = read_dockerfile(found, handler, report)
        pip, cuda = image.pip, image.cuda
        if image.python:
            _python(image.python, found.name, plan, report)
        else:
            report.decide(found.name, image.base, f"names no Python version gpuserve can read: Python {plan.python}")
        if image.torch and not any(line.lower().startswith("torch") for _, line in pip):
            pip.insert(0, (found.name, f"torch=={image.torch}"))
            report.decide(found.name, image.base, f"comes with torch {image.torch}: the app pins torch=={image.torch}")
        image_entries(pip=pip, apt=image.apt, env=image.env, plan=plan, report=report)
    else:
        if dockerfile is not None:
            raise failed("gpuserve import runpod", "--dockerfile", str(dockerfile), "does not exist")
        requirements = handler.parent / "requirements.txt"
        said = "requirements.txt beside it" if requirements.is_file() else "no requirements"
        report.decide(handler.name, None, f"no Dockerfile found: the image is Python {plan.python} with {said}")
        if requirements.is_file():
            pip = read_requirements(requirements, report)
            image_entries(pip=pip, apt=[], env=[], plan=plan, report=report)
    if not any(line.split("=")[0].split("[")[0].strip().lower() == "runpod" for line in plan.pip):
        plan.pip.insert(0, f"runpod=={PINS['runpod']}")
        report.decide("image pip", f"runpod=={PINS['runpod']}", "the handler's module imports runpod")
    return cuda


def _python(version: str, where: str, plan: AppPlan, report: Report) -> None:
    from ..spec import PYTHON_VERSIONS

    if version in PYTHON_VERSIONS:
        plan.python = version
    else:
        report.skip(
            where,
            f"Python {version}",
            f"gpuserve images run Python {', '.join(PYTHON_VERSIONS)}; the app uses {plan.python}: check the "
            "handler's packages work there",
        )


def _start_options(config: dict[str, ast.expr], source: Source, plan: AppPlan, report: Report) -> None:
    modifier = config.get("concurrency_modifier")
    if modifier is not None:
        count = constant_return(modifier, source)
        if count is not None and count >= 1:
            plan.concurrency = count
            report.decide(
                "concurrency_modifier", source.segment(modifier), f"always {count}: the model takes {count} at once"
            )
        else:
            report.skip(
                "concurrency_modifier",
                source.segment(modifier),
                "does not always answer one number: set concurrency= on @gpuserve.model to the most it allows",
            )
    aggregate = config.get("return_aggregate_stream")
    if aggregate is not None:
        report.decide(
            "return_aggregate_stream",
            source.segment(aggregate),
            "every gpuserve target answers a whole request with the list of chunks (its RunPod target sets it)",
        )
    if "refresh_worker" in config or any(
        isinstance(n, ast.Constant) and n.value == "refresh_worker" for n in ast.walk(source.tree)
    ):
        report.skip("refresh_worker", None, "gpuserve does not restart the worker after a job")
    for key in sorted(set(config) - _CONFIG):
        report.skip(f"runpod.serverless.start {key}", source.segment(config[key]), "not a start() option gpuserve has")
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Call) and (source.qualname(node.func) or "").endswith("progress_update"):
            report.skip(
                source.where(node),
                source.segment(node),
                "progress updates go to RunPod's job API; gpuserve has none (stream chunks instead)",
            )


def _wrap(source: Source, module: str, function: Function, plan: AppPlan, report: Report) -> None:
    plan.need("typing", "Any")
    plan.need("uuid")
    plan.need("json")
    plan.blocks.append(_HELPERS)
    plan.setup_lines = [
        "import runpod",
        "",
        "start = runpod.serverless.start",
        f"runpod.serverless.start = _no_worker  # {module}.py starts a RunPod worker when imported: gpuserve serves it",
        "try:",
        f"    import {module} as worker  # its module-level loading runs here, once per container",
        "finally:",
        "    runpod.serverless.start = start",
        f"self.handler = worker.{function.name}",
    ]
    report.decide(f"{module}.py", None, "its module-level code (loading the model) runs in setup(), once per container")
    values = read_inputs(source, function, plan, report)
    is_async = isinstance(function, ast.AsyncFunctionDef)
    if len(values) > 100:
        plan.predict_lines += ["values = {", *[f"    {item}," for item in values[1:-1].split(", ")], "}"]
        values = "values"
    plan.predict_lines.append(f"job = _job({values})")
    if yields(function):
        plan.need("collections.abc", "AsyncIterator" if is_async else "Iterator")
        plan.returns = "AsyncIterator[Any]" if is_async else "Iterator[Any]"
        plan.predict_async = is_async
        loop = "async for" if is_async else "for"
        plan.predict_lines += [f"{loop} chunk in self.handler(job):", "    yield _chunk(chunk)"]
    else:
        plan.predict_async = is_async
        plan.predict_lines.append(f"return _answer({'await ' if is_async else ''}self.handler(job))")
    uses_id = any(
        isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and n.slice.value == "id"
        for n in own_nodes(function)
    )
    if uses_id:
        report.decide(f"{source.name} job['id']", None, "a fresh id per request (gpuserve-<hex>), not RunPod's")


_HELPERS = '''class HandlerError(Exception):
    """The handler answered {"error": ...}: RunPod fails such a job with that message, and so does gpuserve."""


def _no_worker(config: dict[str, Any]) -> None:
    """runpod.serverless.start while the handler's module is imported: gpuserve runs the handler itself."""


def _job(values: dict[str, Any]) -> dict[str, Any]:
    """The job RunPod hands a handler: an id and the input."""
    return {"id": f"gpuserve-{uuid.uuid4().hex}", "input": values}


def _answer(output: Any) -> Any:
    """A handler's return value read as RunPod reads it: {"error": ...} fails; an empty dict is no output."""
    if isinstance(output, dict):
        error = output.get("error")
        if error:
            raise HandlerError(error if isinstance(error, str) else json.dumps(error))
        output = {key: value for key, value in output.items() if key not in ("error", "refresh_worker")}
    return None if output == {} else output


def _chunk(chunk: Any) -> Any:
    """A streamed chunk read as RunPod reads it: one holding {"error": ...} ends the stream with that error."""
    if isinstance(chunk, dict) and chunk.get("error"):
        raise HandlerError(str(chunk["error"]))
    return chunk'''

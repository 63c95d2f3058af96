"""`gpuserve import cog DIR`: cog.yaml and its runner (or older predictor) -> a gpuserve app wrapping the class.

The runner class runs unchanged. The app imports its module in setup() (so module-level loading happens once
per container, as in cog), makes the class and calls its setup(); predict() takes the same inputs with every
Input() constraint and calls run() (or the older predict()). The user's module imports cog, so the app keeps
the cog SDK in its image: `pip install cog` is the Python SDK alone (coglet's server is not started), and it
is what lets the class, its cog.Path and cog.Secret values, and its metrics calls work unchanged everywhere.
"""

from __future__ import annotations

import ast
import shlex
from pathlib import Path
from typing import Any

from ..adapters._common import PINS
from ..errors import Problem
from .cog_types import Unsupported, output, parameter
from .project import DEFAULT_GPU, check_out, image_entries, model_name, read_requirements, resolve_gpu
from .pysource import Function, ImportFailed, Source, failed, yields
from .report import Report
from .writer import AppPlan, call_lines

_HANDLED = {"build", "run", "predict", "image", "model", "environment", "concurrency", "train", "weights"}
_BUILD_HANDLED = {"gpu", "python_version", "python_packages", "python_requirements", "system_packages", "sdk_version"}
_METRICS = {"record_metric", "current_scope", "emit_metric"}


def plan_cog(directory: Path, *, out: Path | None = None, gpu: str | None = None, name: str | None = None) -> AppPlan:
    """Read DIR/cog.yaml and the class it names; the plan of the app (written to DIR/app.py by default)."""
    directory = directory.resolve()
    config = _read_config(directory / "cog.yaml")
    report = Report()
    ref, key = _ref(config)
    file_part, _, class_part = ref.partition(":")
    module_path = (directory / file_part).resolve()
    if not module_path.is_file() or module_path.suffix != ".py":
        raise failed("cog.yaml", key, ref, "names no Python file in the project", hint="point it at a .py file")
    module = ".".join(module_path.relative_to(directory).with_suffix("").parts)
    if not all(part.isidentifier() for part in module.split(".")):
        raise failed("cog.yaml", key, ref, "is not an importable module path", hint="rename the file and folders")
    out = check_out(out, directory, module_path, default="app.py")
    source = Source.read(module_path)
    cls = _find_class(source, class_part, ref, key)
    command = ["gpuserve", "import", "cog", ".", "-o", out.name] + (["--gpu", gpu] if gpu else [])
    command += ["--name", name] if name else []
    plan = AppPlan(
        command=shlex.join(command),
        summary=f"The cog {'runner' if key == 'run' else 'predictor'} {ref}, served by gpuserve; the class runs "
        f"unchanged.\n\nWritten by `gpuserve import cog` from {directory.name}/cog.yaml: edit the cog class, or "
        "import again after changing its inputs or cog.yaml.",
        name=model_name(name, [_image_name(config), directory.name], report),
        class_name=cls.name,
        report=report,
        out=out,
    )
    build = config.get("build") or {}
    if not isinstance(build, dict):
        report.skip("cog.yaml build", build, "is not a mapping of build keys")
        build = {}
    _build(build, directory, plan, report)
    _other_keys(config, plan, report)
    _wrap(source, cls, module, plan, report)
    plan.gpu = resolve_gpu(gpu, wanted=build.get("gpu") is True, default=DEFAULT_GPU)
    if plan.gpu and not gpu:
        report.decide("cog.yaml build.gpu", "true", f"names no GPU: {DEFAULT_GPU} is the default; --gpu NAME chooses")
    elif gpu and build.get("gpu") is not True:
        report.decide("--gpu", gpu, "cog.yaml says no GPU (build.gpu is not true); the --gpu asked for is used")
    return plan


def _read_config(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise failed(
            "gpuserve import cog",
            "DIRECTORY",
            str(path.parent),
            "holds no cog.yaml",
            hint="give the directory of a cog project, the one with cog.yaml",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise failed(
            str(path), "cog.yaml", str(path), f"cannot be read ({exc.strerror or exc})", hint="give the cog project"
        ) from None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise failed(str(path), "cog.yaml", path.name, f"is not YAML ({exc})", hint="fix the file") from None
    if not isinstance(config, dict):
        raise failed(str(path), "cog.yaml", type(config).__name__, "is not a mapping", hint="see cog's docs")
    return config


def _ref(config: dict[str, Any]) -> tuple[str, str]:
    if config.get("run") and config.get("predict"):
        raise failed("cog.yaml", "run, predict", None, "both are set", hint="keep run (predict is its older name)")
    for key in ("run", "predict"):
        value = config.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip(), key
    raise failed(
        "cog.yaml",
        "run",
        config.get("run"),
        "names no runner",
        allowed='"file.py:ClassName" in `run:` (or the older `predict:`)',
        hint='add run: "run.py:Runner"',
    )


def _find_class(source: Source, class_part: str, ref: str, key: str) -> ast.ClassDef:
    classes = source.classes()
    names = [class_part] if class_part else ["Runner", "Predictor"]
    for candidate in names:
        if candidate in classes:
            return classes[candidate]
    raise failed(
        "cog.yaml",
        key,
        ref,
        f"{source.name} defines no class {' or '.join(names)}",
        allowed=", ".join(sorted(classes)) or "no classes are defined there",
        hint="name the class after the colon",
    )


def _image_name(config: dict[str, Any]) -> str:
    """The model's name in `image: r8.im/owner/name:tag` (or `model:`)."""
    value = str(config.get("image") or config.get("model") or "")
    return value.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]


def _build(build: dict[str, Any], directory: Path, plan: AppPlan, report: Report) -> None:
    version = build.get("python_version")
    pip: list[tuple[str, str]] = []
    if version is not None:
        _python(str(version), plan, report)
    for index, line in enumerate(build.get("python_packages") or []):
        pip.append((f"cog.yaml build.python_packages[{index}]", str(line)))
    requirements = build.get("python_requirements")
    if requirements:
        pip += read_requirements(directory / str(requirements), report)
    sdk = build.get("sdk_version")
    cog_pin = f"cog=={sdk}" if sdk and sdk != "prerelease" else f"cog=={PINS['cog']}"
    if sdk == "prerelease":
        report.skip("cog.yaml build.sdk_version", sdk, f"gpuserve pins the cog SDK it was tested with, {cog_pin}")
    apt = [(f"cog.yaml build.system_packages[{i}]", str(p)) for i, p in enumerate(build.get("system_packages") or [])]
    pinned = image_entries(pip=pip, apt=apt, env=[], plan=plan, report=report)
    if not any(p.split("==")[0].strip().lower() == "cog" for p in pinned):
        plan.pip.insert(0, cog_pin)
        report.decide(
            "image pip",
            cog_pin,
            "the class imports cog: its SDK is installed everywhere the app runs (its server is not started)",
        )
    for index, step in enumerate(build.get("run") or []):
        text = step.get("command", step) if isinstance(step, dict) else step
        report.skip(
            f"cog.yaml build.run[{index}]",
            text,
            "gpuserve images have no build commands: do it in setup() (once per container), or fetch files "
            "with weights=[gpuserve.URL(...)]",
        )
    for index, step in enumerate(build.get("pre_install") or []):
        report.skip(f"cog.yaml build.pre_install[{index}]", step, "gpuserve images have no build commands")
    for key in ("cuda", "cudnn"):
        if build.get(key):
            report.skip(
                f"cog.yaml build.{key}",
                build[key],
                "gpuserve chooses the CUDA base image from the GPU and the torch pin",
            )
    for key in sorted(set(build) - _BUILD_HANDLED - {"run", "pre_install", "cuda", "cudnn"}):
        report.skip(f"cog.yaml build.{key}", build[key], "not a build key gpuserve knows how to carry")


def _python(version: str, plan: AppPlan, report: Report) -> None:
    from ..spec import PYTHON_VERSIONS

    minor = ".".join(version.split(".")[:2])
    if minor in PYTHON_VERSIONS:
        plan.python = minor
        if minor != version:
            report.decide("cog.yaml build.python_version", version, f"gpuserve images choose the patch of {minor}")
    else:
        report.skip(
            "cog.yaml build.python_version",
            version,
            f"gpuserve images run Python {', '.join(PYTHON_VERSIONS)}; the app uses {plan.python}: check the "
            "runner's packages work there",
        )


def _other_keys(config: dict[str, Any], plan: AppPlan, report: Report) -> None:
    env = []
    for index, item in enumerate(config.get("environment") or []):
        key, sep, value = str(item).partition("=")
        if sep:
            env.append((f"cog.yaml environment[{index}]", key, value))
        else:
            report.skip(f"cog.yaml environment[{index}]", item, "not NAME=value")
    image_entries(pip=[], apt=[], env=env, plan=plan, report=report)
    concurrency = config.get("concurrency") or {}
    if isinstance(concurrency, dict) and isinstance(concurrency.get("max"), int) and concurrency["max"] > 1:
        plan.concurrency = concurrency["max"]
    if isinstance(concurrency, dict) and concurrency.get("default_target") is not None:
        report.skip(
            "cog.yaml concurrency.default_target",
            concurrency["default_target"],
            "an autoscaling hint Replicate reads; gpuserve scales on keep_warm and max_containers",
        )
    if config.get("train"):
        report.skip("cog.yaml train", config["train"], "training is not served: gpuserve serves predictions only")
    for index, weight in enumerate(config.get("weights") or []):
        report.skip(
            f"cog.yaml weights[{index}]",
            weight.get("name", weight) if isinstance(weight, dict) else weight,
            "declare it as weights=[gpuserve.HuggingFace(...) or gpuserve.URL(...)] and read gpuserve.weights_path()",
        )
    for key in ("image", "model"):
        if config.get(key):
            report.decide(
                f"cog.yaml {key}", config[key], f"the model is named {plan.name!r}; where to push is deploy's"
            )
    for key in sorted(set(config) - _HANDLED):
        report.skip(f"cog.yaml {key}", config[key], "not a cog.yaml key gpuserve knows how to carry")


def _wrap(source: Source, cls: ast.ClassDef, module: str, plan: AppPlan, report: Report) -> None:
    """setup() and predict() around the class, from its methods' signatures."""
    problems: list[Problem] = []
    found_run, found_predict = source.method(cls, "run"), source.method(cls, "predict")
    if found_run and found_predict:
        raise failed(source.name, cls.name, "run, predict", "defines both", hint="keep run() (predict() is older)")
    found = found_run or found_predict
    if found is None:
        raise failed(source.name, cls.name, None, "defines no run() or predict()", hint="add run(self, ...) -> ...")
    _owner, method = found
    setup = source.method(cls, "setup")
    setup_fn: Function | None = setup[1] if setup else None
    plan.setup_async = isinstance(setup_fn, ast.AsyncFunctionDef)
    alias = f"Cog{cls.name}" if not cls.name.startswith("Cog") else cls.name
    plan.setup_lines = [
        f"from {module} import {cls.name} as {alias}  # imported here: its module code runs once per container",
        "",
        f"self.model = {alias}()",
    ]
    arguments = ""
    if setup_fn is not None and any(a.arg == "weights" for a in setup_fn.args.args):
        plan.need("os")
        arguments = 'weights=os.environ.get("COG_WEIGHTS")'
        report.decide(f"{source.name} setup(weights)", None, "given $COG_WEIGHTS (or None), as cog gives it")
    plan.setup_lines.append(f"{'await ' if plan.setup_async else ''}self.model.setup({arguments})")
    args = method.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        problems.append(
            _problem(f"{method.name}()", "takes *args, **kwargs or keyword-only parameters (cog refuses them)")
        )
    positional = args.args[1:] if args.args and args.args[0].arg == "self" else args.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, defaults, strict=True):
        try:
            param = parameter(arg, default, source, plan, report)
        except Unsupported as exc:
            problems.append(_problem(arg.arg, str(exc)))
            continue
        plan.params.append(param)
    try:
        result = output(method.returns, source, plan)
    except Unsupported as exc:
        problems.append(_problem(f"{method.name}() return", str(exc)))
        result = None
    if problems or result is None:
        raise ImportFailed(f"{source.name} {cls.name}.{method.name}", problems)
    plan.blocks += result.models
    plan.returns = result.annotation
    plan.concurrency = _concurrency(method, source) or plan.concurrency
    _predict_body(method, result.streaming, result.async_stream, result.holds_model, plan)
    if any("Secret(" in p.passed for p in plan.params):
        plan.predict_lines.insert(0, "from cog import Secret")
    used = {n.attr for n in ast.walk(source.tree) if isinstance(n, ast.Attribute)}
    used |= {n.id for n in ast.walk(source.tree) if isinstance(n, ast.Name)}
    for name in sorted(used & _METRICS):
        report.skip(
            f"{source.name} {name}",
            None,
            "cog's per-prediction metrics are a no-op outside cog's server: log the values, or read "
            "gpuserve's /metrics",
        )


def _problem(where: str, message: str) -> Problem:
    return Problem(
        field=where,
        value=None,
        message=message,
        allowed="str, int, float, bool, Path, File, Secret, lists and Optional of these (outputs: also iterators and "
        "cog.BaseModel)",
        hint="change the annotation to one cog documents",
    )


def _concurrency(method: Function, source: Source) -> int | None:
    for decorator in method.decorator_list:
        if isinstance(decorator, ast.Call) and source.qualname(decorator.func) == "cog.concurrent":
            value = next((k.value for k in decorator.keywords if k.arg == "max"), None)
            if value is not None:
                number = source.literal(value)
                return number if isinstance(number, int) else None
    return None


def _predict_body(method: Function, streaming: bool, async_stream: bool, holds_model: bool, plan: AppPlan) -> None:
    is_async = isinstance(method, ast.AsyncFunctionDef)
    args = [f"{p.name}={p.passed or p.name}" for p in plan.params]
    head = f"self.model.{method.name}"
    convert = "_plain(chunk)" if holds_model else "chunk"
    if holds_model:
        plan.need("dataclasses")
        plan.need("typing", "Any")
        plan.blocks.insert(0, _PLAIN)
    lines = plan.predict_lines
    if streaming:
        plan.predict_async = async_stream or is_async
        if is_async and not yields(method):  # an async def that returns an iterator
            lines += call_lines(f"async for chunk in await {head}", args, ":") + [f"    yield {convert}"]
        elif plan.predict_async:
            lines += call_lines(f"async for chunk in {head}", args, ":") + [f"    yield {convert}"]
        elif holds_model:
            lines += call_lines(f"for chunk in {head}", args, ":") + [f"    yield {convert}"]
        else:
            lines += call_lines(f"yield from {head}", args)
        return
    plan.predict_async = is_async
    if holds_model:
        lines += call_lines(f"result = {'await ' if is_async else ''}{head}", args) + ["return _plain(result)"]
    else:
        lines += call_lines(f"return {'await ' if is_async else ''}{head}", args)


_PLAIN = '''def _plain(value: Any) -> Any:
    """A cog.BaseModel is a dataclass: gpuserve checks its fields, as plain data, against the pydantic mirror."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value'''

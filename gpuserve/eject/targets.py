"""One context per ejected target, and the files each writes: the entry point in the platform's idiom, its build
files and requirements, a README; the settings a platform has a place for are carried from the spec.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..adapters import RenderedTarget
from ..adapters._cog_types import CogInput, CogOutput, cog_inputs, cog_output
from ..adapters._common import PINS, UV_IMAGE, base_image, local_weights
from ..adapters.modal import modal_gpu
from ..cuda import DEFAULT as DEFAULT_CUDA
from ..example import example_input
from ..loader import LoadedApp
from ..render import render
from ..spec import ModelSpec
from ..weights import HuggingFace
from .entry import RESERVED, EntryInput, sort_imports

PORT = 8000
# What each entry point imports itself, besides the model and what its input annotations need.
PYDANTIC = ("from pydantic import ValidationError", "from pydantic_core import to_jsonable_python")
OWN_IMPORTS: dict[str, tuple[str, ...]] = {
    "runpod": ("from typing import Any", "import runpod", *PYDANTIC),
    "cog": ("from cog import BaseRunner, Input", *PYDANTIC),
    "modal": ("from typing import Any", "import modal", *PYDANTIC),
    "docker": (
        "from contextlib import asynccontextmanager",
        "from typing import Any",
        "from collections.abc import AsyncIterator",
        "from fastapi import FastAPI, Request",
        "from fastapi.exceptions import RequestValidationError",
        "from fastapi.responses import JSONResponse",
        "from pydantic import BaseModel",
        "from pydantic_core import to_jsonable_python",
    ),
}
PACKAGES: dict[str, tuple[str, ...]] = {
    "runpod": ("runpod", "pydantic"),
    "cog": ("pydantic",),
    "modal": ("pydantic",),
    "docker": ("fastapi", "uvicorn", "pydantic"),
}


@dataclass(frozen=True)
class DockerBase:
    base: str
    cuda: bool
    uv_image: str
    python: str
    create_user: bool


@dataclass(frozen=True)
class EjectContext:
    """Everything a target's templates read, decided here so the templates only lay it out."""

    name: str
    class_name: str
    model_alias: str  # the model class's name in the entry point (Modal's class takes the model's own name)
    module: str
    top_level: str
    code_file: str
    input: EntryInput
    imports: str
    with_invalid: bool
    streaming: bool
    is_async: bool
    batched: bool
    has_setup: bool
    has_shutdown: bool
    setup_async: bool
    shutdown_async: bool
    concurrency: int
    concurrent: bool
    spec: ModelSpec
    gpu: Any
    python: str
    apt: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    env_dict: dict[str, str]
    requirements: tuple[str, ...]
    docker: DockerBase
    code: tuple[str, ...]
    local_dirs: tuple[str, ...]
    port: int
    grace: int
    handler_returns: str
    start_config: str
    cog_inputs: tuple[CogInput, ...]
    output: CogOutput
    cuda: str
    cog_version: str
    modal_version: str
    runpod_version: str
    example_kwargs: str
    example_request_json: str
    notes: tuple[str, ...]


def requirements(app: LoadedApp, target: str, weights: bool) -> tuple[str, ...]:
    """The platform's packages pinned as tested, then the user's; a user's line for the same package wins."""
    user = list(app.spec.image.pip)
    names = {canonicalize_name(Requirement(line).name) for line in user}
    ours = PACKAGES[target] + (("huggingface_hub",) if weights else ())
    return tuple([f"{n}=={PINS[n]}" for n in ours if canonicalize_name(n) not in names] + user)


def notes(app: LoadedApp, target: str, translated: tuple[str, ...]) -> tuple[str, ...]:
    """What the previous runtime did that this directory does not, said plainly (also written in README.md)."""
    spec, signature = app.spec, app.signature
    said = [
        f"the drain on shutdown (grace={spec.grace} s, then 'Interrupted' answers) is gone: the platform's own "
        "stop applies"
    ]
    if spec.batch is not None:
        said.append(
            f"batching (max_size={spec.batch.max_size}, wait_ms={spec.batch.wait_ms:g}): each request is predicted "
            "alone, as a list of one item"
        )
    slow = target in ("runpod", "cog") and spec.concurrency > 1 and not signature.is_async
    if slow:
        said.append(
            f"concurrency={spec.concurrency}: a sync predict takes one request at a time here; make predict async "
            "to run several"
        )
    if spec.weights:
        how = "weights_path() fetches them on first use" if "weights_path" in translated else "setup() fetches them"
        said.append(f"weights ({', '.join(w.id for w in spec.weights)}) are no longer fetched before setup(): {how}")
    if target == "docker":
        said.append(f"timeout={spec.timeout} s is not enforced, nor the request limits, /metrics and bearer tokens")
    if target == "cog" and spec.secrets:
        said.append(f"secrets ({', '.join(spec.secrets)}): Replicate has no secret store; they are unset")
    if target == "modal":
        said.append("the `web` HTTP endpoint is not written: call predict with Modal's client")
    if spec.spot_notices != "off":
        said.append(f"spot_notices={spec.spot_notices!r}: the model's on_preempt() is no longer called")
    return tuple(said)


def context(
    app: LoadedApp, target: str, entry: EntryInput, rendered: RenderedTarget, translated: tuple[str, ...]
) -> EjectContext:
    spec, signature = app.spec, app.signature
    base = base_image(spec)
    schema = signature.input_schema()
    inputs, _enums, _problems = cog_inputs(schema)  # problems: the cog render refused them already
    concurrent = target == "cog" and signature.is_async and spec.concurrency > 1
    output = cog_output(signature.output_schema(), signature.streaming, concurrent=signature.is_async)
    reserved = target == "modal" or app.cls.__name__ in RESERVED  # Modal's class takes the model's own name
    alias = f"{app.cls.__name__}Model" if reserved else app.cls.__name__
    model_import = f"from {app.module_name} import {app.cls.__name__}" + (
        f" as {alias}" if alias != app.cls.__name__ else ""
    )
    own = list(OWN_IMPORTS[target])
    if entry.definition:
        own.append("from pydantic import BaseModel, ConfigDict")
    if target == "runpod" and signature.streaming:
        own.append(f"from collections.abc import {'AsyncIterator' if signature.is_async else 'Iterator'}")
    if target == "cog":
        own += _cog_imports(output, concurrent)
    hooks = [getattr(app.cls, name, None) for name in ("setup", "shutdown")]
    if target in ("runpod", "cog") and any(inspect.iscoroutinefunction(h) for h in hooks):
        own.append("import asyncio")
    if target == "docker" and signature.streaming:
        own += ["import json", "from collections.abc import Iterator", "from fastapi import Header"]
        own.append("from fastapi.responses import StreamingResponse")
    example = example_input(schema)
    weights = "weights_path" in translated and any(isinstance(w, HuggingFace) for w in spec.weights)
    code_file = f"{app.top_level}.py" if app.source is None or app.source.is_file() else f"{app.top_level}/"
    start = ['"handler": handler']  # runpod.serverless.start's config, as Python
    if signature.streaming:
        start.append('"return_aggregate_stream": True')  # /runsync answers with the chunks as a list
    if signature.is_async and spec.concurrency > 1:
        start.append(f'"concurrency_modifier": lambda current: {spec.concurrency}')
    return EjectContext(
        name=spec.name,
        class_name=app.cls.__name__,
        model_alias=alias,
        module=app.module_name,
        top_level=app.top_level,
        code_file=code_file,
        input=entry,
        imports=sort_imports([*own, model_import, *entry.imports], app.top_level),
        with_invalid=target != "docker",
        streaming=signature.streaming,
        is_async=signature.is_async,
        batched=signature.batched,
        has_setup=callable(getattr(app.cls, "setup", None)),
        has_shutdown=callable(getattr(app.cls, "shutdown", None)),
        setup_async=inspect.iscoroutinefunction(getattr(app.cls, "setup", None)),
        shutdown_async=inspect.iscoroutinefunction(getattr(app.cls, "shutdown", None)),
        concurrency=spec.concurrency,
        concurrent=concurrent,
        spec=spec,
        gpu=modal_gpu(spec) if target == "modal" else spec.gpu is not None,
        python=spec.image.python,
        apt=spec.image.apt,
        env=spec.image.env_vars,
        env_dict=dict(spec.image.env_vars),
        requirements=requirements(app, target, weights),
        docker=DockerBase(base.image, base.cuda is not None, UV_IMAGE, spec.image.python, base.create_user),
        code=(code_file, *(f"{p}/" for p in local_weights(app))),
        local_dirs=tuple(local_weights(app)),
        port=PORT,
        grace=spec.grace,
        handler_returns=(
            f"{'AsyncIterator' if signature.is_async else 'Iterator'}[Any]" if signature.streaming else "Any"
        ),
        start_config="{" + ", ".join(start) + "}",
        cog_inputs=tuple(inputs),
        output=output,
        cuda=base.cuda.version if base.cuda is not None and base.cuda != DEFAULT_CUDA else "",
        cog_version=PINS["cog"],
        modal_version=PINS["modal"],
        runpod_version=PINS["runpod"],
        example_kwargs=repr(example),
        example_request_json=json.dumps({"input": example}),
        notes=notes(app, target, translated),
    )


def _cog_imports(output: CogOutput, concurrent: bool) -> list[str]:
    annotations = [output.annotation, *(a for _, a in output.fields)]
    typing = [n for n in ("Any", "AsyncIterator", "Iterator", "Optional") if any(n in a for a in annotations)]
    typing = [n for n in typing if not any(f"Concatenate{n}" in a for a in annotations) or n == "Any"]
    cog = [n for n in ("AsyncConcatenateIterator", "ConcatenateIterator") if output.annotation.startswith(n + "[")]
    lines = [f"from typing import {n}" for n in typing] + [f"from cog import {n}" for n in cog]
    if output.fields:
        lines.append("import cog")
    if concurrent:
        lines.append("from cog import concurrent")
    return lines


def files(ctx: EjectContext, target: str, rendered: RenderedTarget) -> dict[str, str]:
    """The entry point and the platform's files for one target (the user's code is added by the caller)."""
    shared = {"requirements.txt": render("eject/_shared/requirements.txt.j2", ctx)}
    if target == "runpod":
        endpoint = json.loads(rendered.files["endpoint.json"])
        endpoint["image"] = "<IMAGE>"
        return shared | {
            "handler.py": render("eject/runpod/handler.py.j2", ctx),
            "Dockerfile": render("eject/runpod/Dockerfile.j2", ctx),
            "test_input.json": json.dumps({"input": json.loads(ctx.example_request_json)["input"]}, indent=2) + "\n",
            "endpoint.json": json.dumps(endpoint, indent=2) + "\n",
            "README.md": render("eject/runpod/README.md.j2", ctx),
        }
    if target == "cog":
        return shared | {
            "runner.py": render("eject/cog/runner.py.j2", ctx),
            "cog.yaml": render("eject/cog/cog.yaml.j2", ctx),
            ".cog/openapi_schema.json": rendered.files[".cog/openapi_schema.json"],
            "README.md": render("eject/cog/README.md.j2", ctx),
        }
    if target == "modal":
        return shared | {
            "modal_app.py": render("eject/modal/modal_app.py.j2", ctx),
            "README.md": render("eject/modal/README.md.j2", ctx),
        }
    return shared | {
        "main.py": render("eject/docker/main.py.j2", ctx),
        "Dockerfile": render("eject/docker/Dockerfile.j2", ctx),
        "README.md": render("eject/docker/README.md.j2", ctx),
    }

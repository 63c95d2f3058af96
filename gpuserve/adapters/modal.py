"""modal: modal_app.py with an @app.cls, enter/exit hooks, a method and a web endpoint, all from the spec."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from ..errors import BuildError
from ..example import example_input
from ..loader import LoadedApp
from ..render import render
from ..spec import ModelSpec
from ._common import (
    BAKED_DIR,
    CACHE_DIR,
    PINS,
    SERVER_PACKAGES,
    bake_command,
    code_copies,
    code_modules,
    header,
    limits_summary,
    local_weights,
    open_input_problems,
    python_type,
    requirements,
    runtime_copies,
    weight_ids,
)
from .base import Carried, RenderedTarget, batch_option, not_offered, runtime, setting

VOLUME = "gpuserve-cache"


@dataclass(frozen=True)
class ModalContext:
    header: str
    name: str
    class_name: str
    entry: str
    python: str
    apt: tuple[str, ...]
    requirements: tuple[str, ...]
    env: dict[str, str]
    sources: tuple[str, ...]
    gpu: str | list[str] | None
    min_containers: int
    max_containers: int | None
    scaledown_window: int
    timeout: int
    startup_timeout: int
    concurrency: int
    secrets: tuple[str, ...]
    volume: str
    cache_dir: str
    params: tuple[str, ...]
    param_names: tuple[str, ...]
    returns: str
    streaming: bool
    typing_imports: tuple[str, ...]
    example_kwargs: str
    modal_version: str
    grace: int
    local_dirs: tuple[str, ...]
    bake: str
    bake_secrets: tuple[str, ...]


def _annotation(prop: dict[str, Any]) -> str:
    """The parameter's annotation: a scalar, `scalar | None` (the forms `modal run` parses), else Any."""
    options = prop.get("anyOf", [])
    if len(options) == 2 and {"type": "null"} in options:
        inner = python_type(next(o for o in options if o != {"type": "null"}))
        return f"{inner} | None" if inner else "Any"
    return python_type(prop) or "Any"


def _parameters(input_schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, "name: type = default") for each input, keyword-only, so required ones may follow optional ones."""
    required = set(input_schema.get("required", []))
    params = []
    for name, prop in input_schema.get("properties", {}).items():
        # A gpuserve.File is a URL or data: URI (`modal run --image URL` parses str), or bytes from Python callers.
        text = f"{name}: {_annotation(prop)}"
        if name not in required:
            text += f" = {prop.get('default')!r}"
        params.append((name, text))
    return params


def modal_gpu(spec: ModelSpec) -> str | list[str] | None:
    """Modal's gpu= value: gpuserve's names are Modal's, "NAME:N" for several, a list for fallbacks."""
    if spec.gpu is None:
        return None
    return spec.gpu.as_strings[0] if len(spec.gpu.types) == 1 else spec.gpu.as_strings


class ModalTarget:
    name = "modal"

    def options(self, app: LoadedApp) -> dict[str, Carried]:
        spec, image = app.spec, app.spec.image
        max_note = "unset: Modal scales without an upper bound" if spec.max_containers is None else ""
        concurrency = (
            "@modal.concurrent(max_inputs=N)" if spec.slots > 1 else "one input at a time (Modal's default)"
        ) + (", (concurrency + 1) * batch.max_size" if spec.batch else "")
        secrets = ", ".join(f"modal.Secret.from_name({s!r})" for s in spec.secrets) or "none"
        return {
            "name": setting("modal.App(name)", spec.name),
            "class_name": setting("@app.cls class name", spec.class_name),
            "gpu": setting("@app.cls(gpu=...)", repr(modal_gpu(spec))),
            "image.python": setting("modal.Image.debian_slim(python_version=...)", image.python),
            "image.pip": setting(".pip_install(...)", ", ".join(image.pip) or "none"),
            "image.apt": setting(".apt_install(...)", ", ".join(image.apt) or "none"),
            "image.env_vars": setting(".env({...})", ", ".join(k for k, _ in image.env_vars) or "none"),
            "keep_warm": setting("@app.cls(min_containers=...)", spec.keep_warm),
            "max_containers": setting("@app.cls(max_containers=...)", spec.max_containers, note=max_note),
            "idle_timeout": setting("@app.cls(scaledown_window=...)", spec.idle_timeout),
            "timeout": setting("@app.cls(timeout=...)", spec.timeout),
            "setup_timeout": setting("@app.cls(startup_timeout=...)", spec.setup_timeout),
            "weights": setting(
                f"fetched in @modal.enter into the Volume {VOLUME} at {CACHE_DIR}, committed after setup; "
                f"bake=True ones in an image build step ({BAKED_DIR}); Local folders with add_local_dir",
                weight_ids(app),
            ),
            "grace": runtime(
                "@modal.exit stops taking work and waits this long for predicts in flight (Modal allows about "
                "30 s after preemption's SIGINT)",
                f"{spec.grace} s",
            ),
            "spot": not_offered("Modal chooses its own capacity and offers no spot choice"),
            "spot_notices": not_offered("Modal handles preemption itself and signals it with SIGINT"),
            "concurrency": setting(concurrency, spec.slots),
            "batch": batch_option(
                spec,
                "the container's batcher (Modal's @modal.batched refuses a class with other methods)",
                "@modal.concurrent(max_inputs=N)",
            ),
            "secrets": setting("@app.cls(secrets=[...])", secrets),
            "limits": runtime(
                "the web endpoint's app answers past them; Modal's proxy holds the connections, so headers, "
                "keep-alive and connection limits are Modal's",
                limits_summary(spec, connections=False),
            ),
        }

    def render(self, app: LoadedApp) -> RenderedTarget:
        spec, signature = app.spec, app.signature
        open_input = open_input_problems(signature.input_schema(), "modal")
        if open_input:
            raise BuildError("gpuserve build --target modal", open_input)
        params = _parameters(signature.input_schema())
        returns = "Iterator[Any]" if signature.streaming else "Any"
        notes = [
            f"secret {s}: create a Modal secret named {s} holding the key {s} (`modal secret create {s} {s}=...`)"
            for s in spec.secrets
        ]
        if spec.max_containers is None:
            notes.append("max_containers is unset: Modal scales without an upper bound")
        bake = bake_command(app)
        ctx = ModalContext(
            header=header(app, self.name),
            name=spec.name,
            class_name=spec.class_name,
            entry=app.entry,
            python=spec.image.python,
            apt=spec.image.apt,
            requirements=tuple(requirements(app, SERVER_PACKAGES)),
            env=spec.image.env_dict
            | {"GPUSERVE_CACHE_DIR": CACHE_DIR}
            | ({"GPUSERVE_WEIGHTS_DIRS": BAKED_DIR} if bake else {}),
            sources=("gpuserve", *code_modules(app)),
            gpu=modal_gpu(spec),
            min_containers=spec.keep_warm,
            max_containers=spec.max_containers,
            scaledown_window=spec.idle_timeout,
            timeout=spec.timeout,
            startup_timeout=spec.setup_timeout,
            concurrency=spec.slots,
            secrets=spec.secrets,
            volume=VOLUME,
            cache_dir=CACHE_DIR,
            params=tuple(text for _, text in params),
            param_names=tuple(name for name, _ in params),
            returns=returns,
            streaming=signature.streaming,
            typing_imports=("Any", "Iterator") if signature.streaming else ("Any",),
            modal_version=PINS["modal"],
            grace=spec.grace,
            local_dirs=tuple(local_weights(app)),
            bake="cd /root && " + shlex.join(bake) if bake else "",
            bake_secrets=tuple(name for name in spec.secrets if name == "HF_TOKEN"),
            example_kwargs=", ".join(f"{k}={v!r}" for k, v in example_input(signature.input_schema()).items()),
        )
        files = {
            "modal_app.py": render("modal/modal_app.py.j2", ctx),
            "requirements.txt": render("_shared/requirements.txt.j2", ctx),
            "README.md": render("modal/README.md.j2", ctx),
        }
        return RenderedTarget(files=files, copies=runtime_copies() | code_copies(app), notes=tuple(notes))

"""The frozen spec: the single source of truth every target renders from."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import Problem, SpecError
from .gpus import GPU_TYPES, MAX_GPU_COUNT, GpuRequest, parse_gpu

PYTHON_VERSIONS: tuple[str, ...] = ("3.10", "3.11", "3.12", "3.13")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_APT = re.compile(r"^[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+:~-]+)?$")

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _check_requirement(text: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement

    if not isinstance(text, str) or any(c in text for c in "\n\r\0"):
        raise ValueError(f"{text!r} is not one requirement")
    try:
        Requirement(text)
    except InvalidRequirement as exc:
        raise ValueError(f"{text!r} is not a PEP 508 requirement ({exc})") from None
    return text


class Image(BaseModel):
    """What a container holds besides the model code. Each builder method returns a new Image."""

    model_config = _FROZEN

    python: str = "3.11"
    pip: tuple[str, ...] = ()
    apt: tuple[str, ...] = ()
    env_vars: tuple[tuple[str, str], ...] = ()

    @field_validator("python")
    @classmethod
    def _python(cls, value: str) -> str:
        if value not in PYTHON_VERSIONS:
            raise ValueError(f"python {value!r} is not supported; use one of {', '.join(PYTHON_VERSIONS)}")
        return value

    @field_validator("pip")
    @classmethod
    def _pip(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_requirement(v) for v in value)

    @field_validator("apt")
    @classmethod
    def _apt(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not isinstance(name, str) or not _APT.match(name):
                raise ValueError(f"{name!r} is not a Debian package name (lowercase letters, digits, + . -)")
        return value

    @field_validator("env_vars")
    @classmethod
    def _env(cls, value: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        for key, val in value:
            if not _ENV_KEY.match(key):
                raise ValueError(f"{key!r} is not an environment variable name (letters, digits, _)")
            if any(c in val for c in "\0\n\r"):
                raise ValueError(f"the value of {key} holds a line break or NUL byte; pass one line")
        return value

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise SpecError("gpuserve.Image", problems_from_validation(exc, prefix="image.")) from None

    def pip_install(self, *packages: str) -> Image:
        return self._extend(pip=self.pip + packages)

    def apt_install(self, *packages: str) -> Image:
        return self._extend(apt=self.apt + packages)

    def env(self, **values: str) -> Image:
        merged = dict(self.env_vars) | {k: str(v) for k, v in values.items()}
        return self._extend(env_vars=tuple(merged.items()))

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env_vars)

    def _extend(self, **changes: Any) -> Image:
        return Image(**(self.model_dump() | changes))


def _gpu(value: object) -> GpuRequest | None:
    return parse_gpu(value)


GpuField = Annotated[
    GpuRequest | None,
    BeforeValidator(_gpu),
    PlainSerializer(lambda g: g.as_strings if g else None, return_type=Any),
]


class ModelSpec(BaseModel):
    """Everything @gpuserve.model was told, validated. Targets render from this alone."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str
    class_name: str
    gpu: GpuField = None
    image: Image = Field(default_factory=Image)
    keep_warm: int = Field(0, ge=0, le=100)
    max_containers: int | None = Field(None, ge=1, le=1000)
    idle_timeout: int = Field(300, ge=2, le=3600)
    timeout: int = Field(600, ge=1, le=86400)
    concurrency: int = Field(1, ge=1, le=1000)
    secrets: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-48 lowercase letters, digits or '-', not starting or ending with '-'")
        return value

    @field_validator("secrets", mode="before")
    @classmethod
    def _secrets(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError('must be a list of names, e.g. secrets=["HF_TOKEN"]')
        for name in value or ():  # type: ignore[attr-defined]
            if not isinstance(name, str) or not _ENV_KEY.match(name):
                raise ValueError(f"{name!r} is not an environment variable name (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _warm_within_max(self) -> ModelSpec:
        if self.max_containers is not None and self.keep_warm > self.max_containers:
            raise ValueError(f"keep_warm={self.keep_warm} is more than max_containers={self.max_containers}")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def default_name(class_name: str) -> str:
    """TinyGPT -> tiny-gpt, HelloModel -> hello-model."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_)|[A-Z]?[a-z]+|[A-Z]+|\d+", class_name)
    name = "-".join(w.lower() for w in words) or "model"
    return name[:48].strip("-")


_ALLOWED: dict[str, str] = {
    "gpu": f"None (CPU), one of {', '.join(GPU_TYPES)}, 'NAME:N' for N GPUs (1-{MAX_GPU_COUNT}), or a list of these in fallback order",
    "keep_warm": "a whole number from 0 to 100, at most max_containers",
    "max_containers": "None (the platform's default) or a whole number from 1 to 1000",
    "idle_timeout": "seconds from 2 to 3600",
    "timeout": "seconds from 1 to 86400",
    "concurrency": "a whole number from 1 to 1000",
    "name": "1-48 characters of a-z, 0-9 and '-'",
    "secrets": "a list of environment variable names",
    "image": "a gpuserve.Image(...)",
    "image.python": ", ".join(PYTHON_VERSIONS),
}
_HINTS: dict[str, str] = {
    "gpu": 'write the name as gpuserve lists it, e.g. gpu="A10G" or gpu=["H100", "A100-80GB"]',
    "keep_warm": "use 0 to scale to zero, or raise max_containers",
    "max_containers": "leave it out for the platform's default",
    "idle_timeout": "pick a value in range; 300 is a common choice",
    "timeout": "pick a value in range",
    "concurrency": "use 1 unless predict is safe to run on several requests at once",
    "name": 'pass name="my-model"',
    "secrets": 'name the environment variables, e.g. secrets=["HF_TOKEN"]',
    "image": "build it with gpuserve.Image(python=...).pip_install(...)",
    "image.python": 'gpuserve.Image(python="3.11")',
}


def problems_from_validation(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Turn pydantic's errors into gpuserve problems that say what is allowed and how to fix it."""
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
        field = prefix + (loc[0] if loc else "spec")
        if field in {"image.pip", "image.apt", "image.env_vars"}:
            field = field.replace("env_vars", "env")
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "is not an option of @gpuserve.model"
        value = err.get("input")
        if not loc and "keep_warm" in message:  # the model-level check of keep_warm against max_containers
            field = "keep_warm"
            value = value.get("keep_warm") if isinstance(value, dict) else value
        problems.append(Problem(field, value, message, _ALLOWED.get(field, ""), _HINTS.get(field, "")))
    return problems

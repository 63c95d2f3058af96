"""The frozen spec: the single source of truth every target renders from."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import Problem, SpecError
from .gpus import GPU_TYPES, MAX_GPU_COUNT, GpuRequest, parse_gpu
from .options import guidance, option
from .weights import WeightSource, duplicate_ids

PYTHON_VERSIONS: tuple[str, ...] = ("3.11", "3.12", "3.13")
# Seconds a container drains when stopped, before shutdown(); GPUSERVE_GRACE_SECONDS overrides it at run time.
DEFAULT_GRACE_SECONDS = 30
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_APT = re.compile(r"^[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+:~-]+)?$")

_FROZEN = ConfigDict(frozen=True, extra="forbid")
# Requests one slot may have waiting, when neither limits.max_queue nor GPUSERVE_MAX_QUEUE says otherwise.
QUEUE_PER_SLOT = 64


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

    python: str = option(
        "3.11",
        allowed=", ".join(PYTHON_VERSIONS),
        hint='gpuserve.Image(python="3.11")',
        doc="The container's Python.",
    )
    pip: tuple[str, ...] = option(
        (),
        allowed="PEP 508 requirement lines",
        hint='pin what the model needs, e.g. .pip_install("torch==2.13.0")',
        doc="pip requirements, pinned; a torch pin decides the CUDA version of GPU images.",
    )
    apt: tuple[str, ...] = option(
        (),
        allowed="Debian package names (lowercase letters, digits, + . -), optionally =version",
        hint='e.g. .apt_install("ffmpeg")',
        doc="Debian/Ubuntu packages.",
    )
    env_vars: tuple[tuple[str, str], ...] = option(
        (),
        allowed="NAME=value pairs, NAME of letters, digits and _, values on one line",
        hint='e.g. .env(HF_HUB_OFFLINE="1")',
        doc="Environment variables set in the image (not secrets).",
    )

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


class Limits(BaseModel):
    """What one server admits before predict sees a request: each limit has one answer, documented in its OpenAPI."""

    model_config = _FROZEN

    max_body_bytes: int = option(
        10 * 1024 * 1024,
        ge=1024,
        le=2**31,
        allowed="bytes from 1024 to 2147483648",
        hint="raise it for large inputs (better: pass a URL); GPUSERVE_MAX_BODY_BYTES overrides it at run time",
        doc="Largest request body; a larger one is answered 413.",
    )
    max_queue: int | None = option(
        None,
        ge=0,
        le=100_000,
        allowed=f"None ({QUEUE_PER_SLOT} per concurrent slot) or a whole number from 0 to 100000",
        hint="0 refuses whatever cannot run at once; GPUSERVE_MAX_QUEUE overrides it at run time",
        doc="Requests waiting for a slot; one more is answered 503 with Retry-After.",
    )
    read_timeout: int = option(
        30,
        ge=1,
        le=3600,
        allowed="seconds from 1 to 3600",
        hint="allow for the largest body on the slowest client you serve",
        doc="Seconds a client may take to send its body; a slower one is answered 408.",
    )
    max_header_bytes: int = option(
        16 * 1024,
        ge=1024,
        le=1024 * 1024,
        allowed="bytes from 1024 to 1048576",
        hint="16384 fits every ordinary client; raise it only for very long bearer tokens or cookies",
        doc="Largest request line plus headers the server buffers; a larger one is refused and its connection closed.",
    )
    keep_alive: int = option(
        5,
        ge=1,
        le=300,
        allowed="seconds from 1 to 300",
        hint="set it above your load balancer's idle timeout only when the balancer reuses connections",
        doc="Seconds an idle keep-alive connection stays open.",
    )
    max_connections: int = option(
        1000,
        ge=8,
        le=100_000,
        allowed="a whole number from 8 to 100000",
        hint="raise it when many clients hold connections open; each one costs a file descriptor",
        doc="Open connections and requests the server holds at once; past it, new requests are answered 503.",
    )

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise SpecError("gpuserve.Limits", problems_from_validation(exc, prefix="limits.")) from None

    def queue_for(self, concurrency: int) -> int:
        """max_queue as declared, or its default for this many concurrent slots."""
        return self.max_queue if self.max_queue is not None else QUEUE_PER_SLOT * concurrency


class Batch(BaseModel):
    """Dynamic batching: concurrent requests grouped into one predict call, which a GPU runs for little more
    than the cost of one. predict then takes `items: list[Item]` and returns one result per item, in order."""

    model_config = _FROZEN

    max_size: int = option(
        8,
        ge=1,
        le=1024,
        strict=True,
        allowed="a whole number from 1 to 1024",
        hint="the most items predict handles at once within the GPU's memory; 8 to 64 is common",
        doc="Most requests in one predict call; a full group goes at once.",
    )
    wait_ms: float = option(
        10,
        ge=0,
        le=60_000,
        strict=True,
        allow_inf_nan=False,
        allowed="milliseconds from 0 to 60000",
        hint="a few milliseconds: each request may wait this long for others to join it",
        doc="Longest the first request of a group waits for more to arrive.",
    )

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise SpecError("gpuserve.Batch", problems_from_validation(exc, prefix="batch.")) from None


class ItemError(Exception):
    """Returned by a batched predict in an item's place: that item's request fails with this message, the rest
    of the group gets its results. (Raising an exception fails every request of the group.)"""


def _gpu(value: object) -> GpuRequest | None:
    return parse_gpu(value)


GpuField = Annotated[
    GpuRequest | None,
    BeforeValidator(_gpu),
    PlainSerializer(lambda g: g.as_strings if g else None, return_type=Any),
]


class ModelSpec(BaseModel):
    """Everything @gpuserve.model was told, validated. Targets render from this alone.

    Each option is declared once, here: its type, range, default, what is allowed and the fix.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str = option(
        ...,
        allowed="1-48 characters of a-z, 0-9 and '-'",
        hint='pass name="my-model"',
        doc="The deployment's name on every platform (defaults to the class name in kebab case).",
    )
    class_name: str = option(..., allowed="the class's own name", hint="leave it out", doc="The decorated class.")
    gpu: GpuField = option(
        None,
        allowed=f"None (CPU), one of {', '.join(GPU_TYPES)}, 'NAME:N' for N GPUs (1-{MAX_GPU_COUNT}), "
        "or a list of these in fallback order",
        hint='write the name as gpuserve lists it, e.g. gpu="L40S" or gpu=["H100", "A100-80GB"]',
        doc="GPU type per container, 'NAME:N' for several, or a fallback list.",
    )
    image: Image = option(
        default_factory=Image,
        allowed="a gpuserve.Image(...)",
        hint="build it with gpuserve.Image(python=...).pip_install(...)",
        doc="Python version, pip and apt packages, environment variables.",
    )
    weights: tuple[WeightSource, ...] = option(
        (),
        allowed="gpuserve.HuggingFace(...), gpuserve.URL(...) and gpuserve.Local(...) sources, each id once",
        hint='e.g. weights=[gpuserve.HuggingFace("org/name", revision="main")]; read them with gpuserve.weights_path',
        doc="Model weights fetched once per cache before setup(), where each platform keeps data.",
    )
    keep_warm: int = option(
        0,
        ge=0,
        le=100,
        allowed="a whole number from 0 to 100, at most max_containers",
        hint="use 0 to scale to zero, or raise max_containers",
        doc="Containers kept running when idle.",
    )
    max_containers: int | None = option(
        None,
        ge=1,
        le=1000,
        allowed="None (the platform's default) or a whole number from 1 to 1000",
        hint="leave it out for the platform's default",
        doc="Upper bound on containers.",
    )
    idle_timeout: int = option(
        300,
        ge=2,
        le=3600,
        allowed="seconds from 2 to 3600",
        hint="pick a value in range; 300 is a common choice",
        doc="Seconds an idle container waits before it scales down.",
    )
    timeout: int = option(
        600,
        ge=1,
        le=86400,
        allowed="seconds from 1 to 86400",
        hint="pick a value in range",
        doc="Seconds one predict may run.",
    )
    setup_timeout: int = option(
        1800,
        ge=10,
        le=86400,
        allowed="seconds from 10 to 86400",
        hint="allow for the largest weight download and load; 1800 fits tens of GB",
        doc="Seconds a container may spend starting: downloading weights and running setup().",
    )
    grace: int = option(
        DEFAULT_GRACE_SECONDS,
        ge=1,
        le=3600,
        allowed="seconds from 1 to 3600",
        hint="the longest a predict in flight should get to finish when the container is stopped",
        doc="Seconds a stopping container lets predicts in flight finish before answering them as interrupted.",
    )
    spot_notices: Literal["off", "aws", "gcp"] = option(
        "off",
        allowed="'off', 'aws' or 'gcp'",
        hint="name the cloud whose spot instances the container runs on",
        doc="Watch this cloud's spot-interruption notice and start the drain before the stop signal.",
    )
    spot: Literal["off", "prefer", "only"] = option(
        "off",
        allowed="'off' (on-demand only), 'prefer' (spot, falling back to on-demand) or 'only' (spot only)",
        hint="spot GPUs cost less but can be taken back: use 'prefer' with grace and spot_notices set",
        doc="Run on spot (preemptible) capacity where the platform lets you choose it.",
    )
    concurrency: int = option(
        1,
        ge=1,
        le=1000,
        allowed="a whole number from 1 to 1000",
        hint="use 1 unless predict is safe to run on several requests at once",
        doc="Requests one container runs at once.",
    )
    secrets: tuple[str, ...] = option(
        (),
        allowed="a list of environment variable names",
        hint='name the environment variables, e.g. secrets=["HF_TOKEN"]',
        doc="Environment variables the platform injects at run time, never baked into a build.",
    )
    batch: Batch | None = option(
        None,
        allowed="None (one request per predict call) or a gpuserve.Batch(max_size=..., wait_ms=...)",
        hint="e.g. batch=gpuserve.Batch(max_size=16, wait_ms=10), with `def predict(self, items: list[Item]) -> "
        "list[Result]`",
        doc="Group concurrent requests into one predict call: up to max_size, waiting at most wait_ms.",
    )
    limits: Limits = option(
        default_factory=Limits,
        allowed="a gpuserve.Limits(...)",
        hint="e.g. limits=gpuserve.Limits(max_body_bytes=1_000_000, max_queue=8)",
        doc="Body size, queue length, client timeouts and connection limits of the model's HTTP server.",
    )

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

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: tuple[WeightSource, ...]) -> tuple[WeightSource, ...]:
        twice = duplicate_ids(value)
        if twice:
            raise ValueError(f"{', '.join(twice)} named twice; each source id (repo id, URL or path) once")
        return value

    @model_validator(mode="after")
    def _warm_within_max(self) -> ModelSpec:
        if self.max_containers is not None and self.keep_warm > self.max_containers:
            raise ValueError(f"keep_warm={self.keep_warm} is more than max_containers={self.max_containers}")
        return self

    @property
    def slots(self) -> int:
        """Requests one container takes at once. Batched: every running group full, and one more forming,
        so the next group is ready the moment a predict returns."""
        if self.batch is None:
            return self.concurrency
        return (self.concurrency + 1) * self.batch.max_size

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def default_name(class_name: str) -> str:
    """TinyGPT -> tiny-gpt, HelloModel -> hello-model."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_)|[A-Z]?[a-z]+|[A-Z]+|\d+", class_name)
    name = "-".join(w.lower() for w in words) or "model"
    return name[:48].strip("-")


def problems_from_validation(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Turn pydantic's errors into gpuserve problems that say what is allowed and how to fix it."""
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not isinstance(p, int)]
        field = prefix + (loc[0] if loc else "spec")
        if field in {"limits", "batch"} and len(loc) > 1:  # passed as a dict: name the option inside
            field = f"{field}.{loc[-1]}"
        if field in {"image.pip", "image.apt", "image.env_vars"}:
            field = field.replace("env_vars", "env")
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            owner = {"image.": "gpuserve.Image", "limits.": "gpuserve.Limits", "batch.": "gpuserve.Batch"}
            message = f"is not an option of {owner.get(field[: field.find('.') + 1], '@gpuserve.model')}"
        value = err.get("input")
        if not loc and "keep_warm" in message:  # the model-level check of keep_warm against max_containers
            field = "keep_warm"
            value = value.get("keep_warm") if isinstance(value, dict) else value
        allowed, hint = _guidance(field)
        problems.append(Problem(field=field, value=value, message=message, allowed=allowed, hint=hint))
    return problems


def _guidance(field: str) -> tuple[str, str]:
    """What is allowed and the fix, as declared on the field itself."""
    prefix, _, rest = field.partition(".")
    owners: dict[str, type[BaseModel]] = {"image": Image, "limits": Limits, "batch": Batch}
    owner = owners.get(prefix, ModelSpec) if rest else ModelSpec
    return guidance(owner, {"image.env": "env_vars"}.get(field, rest or field))

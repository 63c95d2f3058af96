"""@gpuserve.model: validate the class and the options, attach the spec, nothing else."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar, overload

from pydantic import ValidationError

from .errors import Problem, SpecError
from .signature import PredictSignature, inspect_predict
from .spec import Batch, Image, Limits, ModelSpec, default_name, problems_from_validation
from .weights import WeightSource

T = TypeVar("T", bound=type)

SPEC_ATTR = "__gpuserve_spec__"
SIGNATURE_ATTR = "__gpuserve_signature__"


@overload
def model(cls: T, /) -> T: ...
@overload
def model(
    *,
    name: str | None = ...,
    gpu: str | list[str] | None = ...,
    image: Image | None = ...,
    weights: Sequence[WeightSource] = ...,
    keep_warm: int = ...,
    max_containers: int | None = ...,
    idle_timeout: int = ...,
    timeout: int = ...,
    setup_timeout: int = ...,
    grace: int = ...,
    spot_notices: Literal["off", "aws", "gcp"] = ...,
    spot: Literal["off", "prefer", "only"] = ...,
    concurrency: int = ...,
    secrets: list[str] | tuple[str, ...] = ...,
    limits: Limits | None = ...,
    batch: Batch | None = ...,
) -> Callable[[T], T]: ...


def model(cls: Any = None, /, **options: Any) -> Any:
    """Declare a model class. Works bare (`@gpuserve.model`) or called (`@gpuserve.model(gpu="H100")`)."""
    if cls is not None:
        if not inspect.isclass(cls):
            raise SpecError(
                "@gpuserve.model",
                [
                    Problem(
                        field="first argument",
                        value=cls,
                        message="is not a class",
                        allowed="a class with setup() and predict()",
                        hint="use @gpuserve.model(...) with keyword options only",
                    )
                ],
            )
        return _decorate(cls, options)

    def decorate(target: T) -> T:
        return _decorate(target, options)

    return decorate


def _decorate(cls: T, options: dict[str, Any]) -> T:
    subject = f"@gpuserve.model on {cls.__name__}"
    if SPEC_ATTR in cls.__dict__:
        raise SpecError(
            subject,
            [
                Problem(
                    field=cls.__name__,
                    value=cls,
                    message="is already decorated with @gpuserve.model",
                    allowed="one decorator per class",
                    hint="remove the second @gpuserve.model",
                )
            ],
        )
    problems: list[Problem] = []
    for hook in ("setup", "shutdown"):
        member = getattr(cls, hook, None)
        if member is not None and not callable(member):
            problems.append(
                Problem(
                    field=f"{cls.__name__}.{hook}",
                    value=member,
                    message="is not a method",
                    allowed="def setup(self) -> None",
                    hint=f"define {hook} as a method",
                )
            )
    # A batched predict takes list[Item] and returns list[Result]: read it so, whatever else is wrong with batch.
    signature, found = inspect_predict(cls, batched=options.get("batch") is not None)
    problems += found
    fields = {"name": default_name(cls.__name__), "class_name": cls.__name__} | {
        k: v for k, v in options.items() if v is not None or k in {"gpu", "max_containers"}
    }
    if "class_name" in options:
        problems.append(
            Problem(
                field="class_name",
                value=options["class_name"],
                message="is not an option of @gpuserve.model",
                allowed="",
                hint="leave it out; it is the class's own name",
            )
        )
    for key, kind in (("limits", Limits), ("batch", Batch)):
        if isinstance(fields.get(key), dict):  # given as a dict: its own type refuses it, with the other problems
            try:
                fields[key] = kind(**fields[key])
            except SpecError as exc:
                problems += exc.problems
                del fields[key]
    spec = None
    try:
        spec = ModelSpec(**fields)
    except ValidationError as exc:
        problems += problems_from_validation(exc)
    if problems:
        raise SpecError(subject, problems)
    assert spec is not None and signature is not None
    setattr(cls, SPEC_ATTR, spec)
    setattr(cls, SIGNATURE_ATTR, signature)
    return cls


def spec_of(cls: type) -> tuple[ModelSpec, PredictSignature]:
    """The spec and signature recorded on a decorated class."""
    spec = cls.__dict__.get(SPEC_ATTR)
    signature = cls.__dict__.get(SIGNATURE_ATTR)
    if spec is None or signature is None:
        raise SpecError(
            cls.__name__,
            [
                Problem(
                    field=cls.__name__,
                    value=cls,
                    message="is not decorated",
                    allowed="a class decorated with @gpuserve.model",
                    hint="add @gpuserve.model(...) above the class",
                )
            ],
        )
    return spec, signature


def is_model(obj: object) -> bool:
    return inspect.isclass(obj) and SPEC_ATTR in obj.__dict__

"""The protocol every target implements, what a render returns, and how a target carries each spec field."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from ..loader import LoadedApp
from ..spec import Image, ModelSpec

How = Literal["setting", "runtime", "not offered"]


@dataclass(frozen=True)
class Carried:
    """What one spec field becomes on one platform: a setting (where, and the value), the runtime's job, or nothing."""

    how: How
    where: str  # the platform's setting, or what enforces it
    value: str = ""  # the rendered value, for a setting
    note: str = ""  # said at build time for "not offered"; a remark otherwise


def setting(where: str, value: object, note: str = "") -> Carried:
    return Carried(how="setting", where=where, value=str(value), note=note)


def runtime(where: str, value: object = "", note: str = "") -> Carried:
    return Carried(how="runtime", where=where, value=str(value), note=note)


def not_offered(note: str) -> Carried:
    return Carried(how="not offered", where="-", note=note)


def batch_option(spec: ModelSpec, where: str, admits: str) -> Carried:
    """How a target carries `batch`: gpuserve's own batcher, behind the platform's concurrency (`admits`)."""
    if spec.batch is None:
        return runtime("one request per predict call", "off")
    return runtime(
        f"{where} groups requests into one predict call, sent when max_size are in or wait_ms after the first; "
        f"{admits} lets {spec.slots} in at once: {spec.concurrency} group(s) running and one forming",
        f"max_size={spec.batch.max_size}, wait_ms={spec.batch.wait_ms:g}",
    )


def spec_fields() -> list[str]:
    """Every field a target must decide about: the spec's, with the image's own fields spelled out."""
    fields: list[str] = []
    for name in ModelSpec.model_fields:
        if name == "image":
            fields += [f"image.{sub}" for sub in Image.model_fields]
        else:
            fields.append(name)
    return fields


@dataclass(frozen=True)
class RenderedTarget:
    """A build directory before it is written: rendered text files and files copied as they are."""

    files: dict[str, str]
    copies: dict[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


class Target(Protocol):
    name: str

    def options(self, app: LoadedApp) -> dict[str, Carried]:
        """How this target carries every spec field for this app (see spec_fields)."""
        ...

    def render(self, app: LoadedApp) -> RenderedTarget:
        """Render the target's files from the app's spec. Raise BuildError for what it cannot express."""
        ...


def field_value(spec: ModelSpec, name: str) -> Any:
    """A spec field's value by its table name ("keep_warm", "image.pip")."""
    owner: Any = spec.image if name.startswith("image.") else spec
    return getattr(owner, name.removeprefix("image."))


def is_default(spec: ModelSpec, name: str) -> bool:
    model: type[BaseModel] = Image if name.startswith("image.") else ModelSpec
    info = model.model_fields[name.removeprefix("image.")]
    default = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    return bool(field_value(spec, name) == default)


def option_notes(options: dict[str, Carried], spec: ModelSpec) -> list[str]:
    """Build notes for what the platform does not offer, where the spec asked for more than the default."""
    return [f"{name}: {c.note}" for name, c in options.items() if c.how == "not offered" and not is_default(spec, name)]

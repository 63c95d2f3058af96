"""Weight sources a model declares, and where each was fetched to.

The spec side only: validation, ids and slugs, and the registry that `weights_path` reads. Fetching lives in
`gpuserve.runtime.weights`, which fills the registry before setup() runs; nothing here imports the hub or the network.
"""

from __future__ import annotations

import hashlib
import ipaddress
import posixpath
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeAlias
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import GpuserveError, Problem, SpecError
from .options import guidance, option

# Hugging Face's own rule (huggingface_hub.utils.validate_repo_id): "name" or "org/name" of letters, digits, - _ .
_REPO_ID = re.compile(r"^(\w[\w.-]*/)?\w[\w.-]*$", re.ASCII)
_REPO_ID_MAX = 96
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_LOOPBACK_NAMES = frozenset({"localhost"})
_FROZEN = ConfigDict(frozen=True, extra="forbid")


class WeightsError(GpuserveError):
    """Weights could not be fetched, verified or found (at start-up, or by weights_path in setup())."""


class _Source(BaseModel):
    model_config = _FROZEN
    _id_field: ClassVar[str]  # the field a kind is known by: its repo id, URL or path

    def _construct(self, **data: Any) -> None:
        """Validate as pydantic does, but refuse with a SpecError that names the field (more: kind, or a typo)."""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise SpecError(f"gpuserve.{type(self).__name__}", _problems(type(self), exc)) from None

    @property
    def id(self) -> str:
        """The source's id, as weights_path and duplicate checks know it."""
        return str(getattr(self, self._id_field))

    @property
    def slug(self) -> str:
        """A directory- and cog-safe name, unique per id: readable part of the id, then a short hash of it."""
        digest = hashlib.sha256(self.id.encode()).hexdigest()[:10]
        readable = re.sub(r"[^a-z0-9]+", "-", self.id.split("://", 1)[-1].lower()).strip("-")[:40].strip("-")
        return f"{readable}-{digest}" if readable else digest


class HuggingFace(_Source):
    """A Hugging Face Hub repository, fetched through huggingface_hub's cache (revisions, HF_TOKEN, offline mode)."""

    _id_field: ClassVar[str] = "repo_id"
    kind: Literal["huggingface"] = "huggingface"
    repo_id: str = option(
        allowed=f"'name' or 'org/name' of letters, digits, '-', '_' and '.', at most {_REPO_ID_MAX} characters",
        hint='copy it from the model page, e.g. gpuserve.HuggingFace("openai-community/gpt2")',
    )
    revision: str | None = option(
        None,
        allowed="None (the default branch), a branch, a tag or a commit hash",
        hint='pin a commit hash for reproducible deploys, e.g. revision="607a30d7..."',
    )
    allow_patterns: tuple[str, ...] | None = option(
        None,
        allowed="None (every file) or a non-empty list of glob patterns",
        hint='e.g. allow_patterns=["*.json", "*.safetensors"]',
    )
    bake: bool = option(False, allowed="True or False", hint="bake=True puts the files in the image at build time")

    def __init__(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        allow_patterns: Sequence[str] | None = None,
        bake: bool = False,
        **more: Any,
    ) -> None:
        self._construct(repo_id=repo_id, revision=revision, allow_patterns=allow_patterns, bake=bake, **more)

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, value: str) -> str:
        if len(value) > _REPO_ID_MAX or not _REPO_ID.match(value) or "--" in value or ".." in value:
            raise ValueError("is not a Hugging Face repo id")
        if value.endswith((".git", ".ipynb")) or value.startswith(("-", ".")):
            raise ValueError("is not a Hugging Face repo id")
        return value

    @field_validator("revision")
    @classmethod
    def _revision(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c.isspace() or c == "\0" for c in value)):
            raise ValueError("must be a non-empty branch, tag or commit hash without spaces")
        return value

    @field_validator("allow_patterns", mode="before")
    @classmethod
    def _patterns(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError('must be a list of patterns, not one string: write allow_patterns=["*.json"]')
        if value is not None and not value:
            raise ValueError("is empty, so nothing would be fetched; leave it out to fetch every file")
        for pattern in value or ():  # type: ignore[attr-defined]
            if not isinstance(pattern, str) or not pattern or any(c in pattern for c in "\0\n\r"):
                raise ValueError(f"{pattern!r} is not a glob pattern")
        return value


class URL(_Source):
    """One file over HTTPS, downloaded once per cache, resumable, and checked against sha256 when given."""

    _id_field: ClassVar[str] = "url"
    kind: Literal["url"] = "url"
    url: str = option(
        allowed="an https:// URL (http:// only for 127.0.0.1, ::1 or localhost), without user:password@",
        hint="serve the file over https; pass credentials at run time, never in the URL",
    )
    sha256: str | None = option(
        None,
        allowed="None or 64 hexadecimal characters",
        hint="run `sha256sum FILE` on a good copy and paste the first column",
    )
    bake: bool = option(False, allowed="True or False", hint="bake=True puts the file in the image at build time")

    def __init__(self, url: str, *, sha256: str | None = None, bake: bool = False, **more: Any) -> None:
        self._construct(url=url, sha256=sha256, bake=bake, **more)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if any(c.isspace() or ord(c) < 32 for c in value):
            raise ValueError("holds whitespace or control characters")
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("is not an http(s) URL with a host")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("uses http://, which is only allowed for loopback hosts (tests); use https://")
        if parts.username is not None or parts.password is not None:
            raise ValueError("holds credentials, which would be baked into every build")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value):
            raise ValueError("is not a sha256 digest")
        return value.lower() if value is not None else None

    @property
    def filename(self) -> str:
        """The file's name on disk: the URL's last path segment, made safe; 'weights' when it has none."""
        name = unquote(urlsplit(self.url).path.rsplit("/", 1)[-1])
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip(".")
        return name[:128] or "weights"


class Local(_Source):
    """Files shipped next to the model code, by a path relative to it."""

    _id_field: ClassVar[str] = "path"
    kind: Literal["local"] = "local"
    path: str = option(
        allowed="a relative path inside the model's code directory, without '..'",
        hint='put the files next to your code and name them, e.g. gpuserve.Local("./weights")',
    )

    def __init__(self, path: str, **more: Any) -> None:
        self._construct(path=path, **more)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value or "\0" in value or value.startswith(("/", "\\", "~")) or re.match(r"^[A-Za-z]:", value):
            raise ValueError("is not a relative path")
        normal = posixpath.normpath(value.replace("\\", "/"))
        if normal == "." or normal.split("/")[0] == "..":
            raise ValueError("does not name something inside the code directory")
        return normal


WeightSource: TypeAlias = Annotated[HuggingFace | URL | Local, Field(discriminator="kind")]


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _problems(owner: type[BaseModel], exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "source"
        allowed, hint = guidance(owner, field)
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(name for name in owner.model_fields if name != "kind")
            hint = "check the spelling"
            message = f"is not an option of gpuserve.{owner.__name__}"
        problems.append(Problem(field=field, value=err.get("input"), message=message, allowed=allowed, hint=hint))
    return problems


def duplicate_ids(sources: Iterable[WeightSource]) -> list[str]:
    """Ids declared more than once, in order, each named once: weights_path could not tell them apart."""
    seen: set[str] = set()
    repeated: list[str] = []
    for source in sources:
        if source.id in seen and source.id not in repeated:
            repeated.append(source.id)
        seen.add(source.id)
    return repeated


# The registry: filled by gpuserve.runtime.weights.fetch_all before setup() runs, read by weights_path.
_lock = threading.Lock()
_declared: list[str] = []
_paths: dict[str, Path] = {}


def declare(sources: Iterable[WeightSource]) -> None:
    """Start a fresh registry for these sources, none fetched yet (so errors can list what was declared)."""
    with _lock:
        _declared[:] = [s.id for s in sources]
        _paths.clear()


def register(source: WeightSource, path: Path) -> None:
    """Record where a source was fetched to."""
    with _lock:
        if source.id not in _declared:
            _declared.append(source.id)
        _paths[source.id] = path


def weights_path(source: WeightSource | str) -> Path:
    """The local path of a fetched source, by the source or its id: a directory for HuggingFace and Local, the file
    for a URL."""
    source_id = source if isinstance(source, str) else source.id
    with _lock:
        declared = list(_declared)
        if source_id not in declared and "://" not in source_id:
            source_id = posixpath.normpath(source_id.replace("\\", "/"))  # "./weights" names Local("weights")
        path = _paths.get(source_id)
    if path is not None:
        return path
    if source_id in declared:
        raise WeightsError(
            f"weights_path({source_id!r}): this source is declared but not fetched yet. Weights are fetched "
            "before setup() runs: call weights_path in setup() or later, not at import time or in __init__."
        )
    listed = ", ".join(repr(i) for i in declared) or "none"
    raise WeightsError(
        f"weights_path({source_id!r}): no weights source has this id. Declared ids: {listed}. Weights are fetched "
        "before setup() runs. Fix: pass a source given to @gpuserve.model(weights=[...]), or its repo id, URL or path."
    )

"""What every target's planner reads: the user's options, the rendered directory, the tag, the environment."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..adapters import RenderedTarget
from ..loader import LoadedApp
from .plan import Command, Render
from .preflight import Check

RUNPOD_API = "https://api.runpod.io"
REPLICATE_API = "https://api.replicate.com"
# Where the API calls go: a proxy, or a stand-in in tests. The defaults are the platforms' own.
RUNPOD_API_ENV = "GPUSERVE_RUNPOD_API_URL"
REPLICATE_API_ENV = "GPUSERVE_REPLICATE_API_URL"


@dataclass(frozen=True)
class DeployOptions:
    """The command line of `gpuserve deploy`, as the user wrote it (paths are shown the way they were given)."""

    app: str
    target: str  # modal, runpod, cog, docker
    build_dir: str
    tag: str | None = None  # default: a hash of the rendered directory
    registry: str | None = None  # REGISTRY/NAMESPACE the image goes under (runpod, docker)
    image: str | None = None  # a whole image reference instead
    model: str | None = None  # OWNER/NAME on Replicate (cog)
    push: bool = False  # docker: push the image too
    secrets_from_env: bool = False  # modal: store the spec's secrets from this environment first
    registry_auth: str | None = None  # runpod: the id of a registry credential, for private images


@dataclass(frozen=True)
class DeployContext:
    app: LoadedApp
    options: DeployOptions
    rendered: RenderedTarget
    tag: str
    env: Mapping[str, str]
    home: Path

    @property
    def name(self) -> str:
        return self.app.spec.name

    def api(self, variable: str, default: str) -> str:
        return (self.env.get(variable) or default).rstrip("/")

    def image(self, placeholder: str | None = "<REGISTRY>") -> str:
        """--image (tagged if it has no tag), else REGISTRY/NAME:TAG; without --registry, placeholder/NAME:TAG."""
        options = self.options
        if options.image:
            return options.image if has_tag(options.image) else f"{options.image}:{self.tag}"
        base = options.registry.rstrip("/") if options.registry else placeholder
        return f"{base}/{self.name}:{self.tag}" if base else f"{self.name}:{self.tag}"


def has_tag(reference: str) -> bool:
    """True for `repo:tag` or `repo@sha256:...`; a registry's port (`host:5000/repo`) is not a tag."""
    last = reference.rsplit("/", 1)[-1]
    return ":" in last or "@" in last


def has_namespace(reference: str) -> bool:
    """True for `user/repo` or `registry/...`: a bare `repo` would be pushed to Docker Hub's official library."""
    return "/" in reference


def image_steps(
    image: str, directory: str, pushed_for: str, build_title: str = "Build the image", platform: str = ""
) -> tuple[Command, Command]:
    """`docker build` of the rendered directory, then `docker push` to where `pushed_for` pulls it from."""
    return (
        Command(
            build_title,
            ("docker", "build", *(("--platform", platform) if platform else ()), "-t", image, directory),
            fix="read docker's output above; `docker build` must work in that directory on its own",
        ),
        Command(
            f"Push it to the registry{pushed_for}",
            ("docker", "push", image),
            fix=f"log in to the registry (`docker login {image.split('/', 1)[0]}`) and check you may push there",
        ),
    )


def namespace_checks(image: str, options: DeployOptions) -> list[Check]:
    """A registry given without a namespace would push to Docker Hub's library, which refuses it."""
    if not (options.registry or options.image) or has_namespace(image):
        return []
    return [
        Check(
            "--image",
            False,
            f"{image} names no registry or namespace, so `docker push` would go to Docker Hub's library",
            "pass --registry REGISTRY/NAMESPACE or an --image with one",
        )
    ]


def content_tag(rendered: RenderedTarget) -> str:
    """A tag that changes exactly when the rendered directory does: the code, the runtime, the settings.

    A new tag makes platforms roll out a new release; redeploying an unchanged model keeps the same one.
    """
    digest = hashlib.sha256()
    for rel in sorted([*rendered.files, *rendered.copies]):
        data = rendered.files[rel].encode() if rel in rendered.files else rendered.copies[rel].read_bytes()
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:12]


def render_step(ctx: DeployContext, what: str) -> Render:
    """Step 1 of every plan: the target's directory, written as `gpuserve build` writes it."""
    target = ctx.options.target
    return Render(f"Render {what} into {ctx.options.build_dir}", ctx.options.app, target, ctx.options.build_dir)
